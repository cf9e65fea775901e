package tileattn.mask;

import java.util.Arrays;

/**
 * For each query tile, the ascending list of KV tiles it reads, in compressed rows: the KV tiles of query tile
 * q are {@code kvTiles[offsets[q] .. offsets[q+1])}. This is the form the CPU and GPU kernels consume.
 */
public record TileLists(int[] offsets, int[] kvTiles) {

    public TileLists {
        if (offsets.length < 1 || offsets[0] != 0 || offsets[offsets.length - 1] != kvTiles.length) {
            throw new IllegalArgumentException("malformed tile lists");
        }
    }

    public static TileLists dense(int tiles) {
        int[] offsets = new int[tiles + 1];
        int[] kv = new int[tiles * tiles];
        for (int q = 0; q < tiles; q++) {
            offsets[q + 1] = offsets[q] + tiles;
            for (int k = 0; k < tiles; k++) {
                kv[q * tiles + k] = k;
            }
        }
        return new TileLists(offsets, kv);
    }

    public int queryTiles() {
        return offsets.length - 1;
    }

    public int count(int queryTile) {
        return offsets[queryTile + 1] - offsets[queryTile];
    }

    public int get(int queryTile, int i) {
        return kvTiles[offsets[queryTile] + i];
    }

    public int[] of(int queryTile) {
        return Arrays.copyOfRange(kvTiles, offsets[queryTile], offsets[queryTile + 1]);
    }

    public int totalPairs() {
        return kvTiles.length;
    }

    /**
     * The transpose: for each KV tile, the ascending query tiles whose lists hold it. The KV tiles must be
     * numbered below {@code tiles}.
     */
    public TileLists transpose(int tiles) {
        int[] offsets = new int[tiles + 1];
        for (int kv : kvTiles) {
            offsets[kv + 1]++;
        }
        for (int t = 0; t < tiles; t++) {
            offsets[t + 1] += offsets[t];
        }
        int[] readers = new int[kvTiles.length];
        int[] filled = Arrays.copyOf(offsets, tiles);
        for (int q = 0; q < queryTiles(); q++) {
            for (int i = this.offsets[q]; i < this.offsets[q + 1]; i++) {
                readers[filled[kvTiles[i]]++] = q;
            }
        }
        return new TileLists(offsets, readers);
    }
}
