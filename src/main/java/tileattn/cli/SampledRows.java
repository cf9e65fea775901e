package tileattn.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;

/**
 * Exact attention in double precision for a few query rows of tile-order inputs, straight from the mask's
 * definition ({@link StaMask#allows}); checks a GPU output at full benchmark scale, where a whole reference would
 * take hours. Rows are taken from the first and the last head: the first and last video rows, the first and last
 * text rows when there is text, and random rows.
 */
final class SampledRows {

    /** Query row {@code row} (tile order) of head {@code head}, batch 0. */
    record Row(int head, int row) {
    }

    private final TokenLayout layout;
    private final Window window;
    private final List<Row> rows;
    private final double[][] expected;

    /**
     * @param window the STA window of every head, or null for dense
     */
    SampledRows(RandomHalfTensor q, RandomHalfTensor k, RandomHalfTensor v, TokenLayout layout, Window window,
                float scale, int randomRowsPerHead, long seed) {
        this.layout = layout;
        this.window = window;
        this.rows = choose(layout, q.dim(1), randomRowsPerHead, seed);
        this.expected = new double[rows.size()][];
        IntStream.range(0, rows.size()).parallel().forEach(i -> expected[i] = reference(q, k, v, rows.get(i), scale));
    }

    static List<Row> choose(TokenLayout layout, int heads, int randomRowsPerHead, long seed) {
        int video = layout.videoTokens(), s = layout.sequenceLength();
        Random rnd = new Random(seed);
        List<Row> rows = new ArrayList<>();
        for (int head : heads == 1 ? new int[]{0} : new int[]{0, heads - 1}) {
            List<Integer> picked = new ArrayList<>(List.of(0, video - 1));
            if (s > video) {
                picked.add(video);
                picked.add(s - 1);
            }
            for (int i = 0; i < randomRowsPerHead; i++) {
                picked.add(rnd.nextInt(s));
            }
            picked.stream().distinct().forEach(r -> rows.add(new Row(head, r)));
        }
        return rows;
    }

    List<Row> rows() {
        return rows;
    }

    /** The exact output row, double precision. */
    double[] expected(int i) {
        return expected[i].clone();
    }

    /** Keys the row attends, as [start, end) token ranges in tile order. */
    private List<int[]> keyRanges(int row) {
        int video = layout.videoTokens(), s = layout.sequenceLength();
        if (window == null || row >= video) {
            return List.of(new int[]{0, s});
        }
        TileGrid grid = layout.grid();
        int[] starts = grid.tileStarts();
        int qTile = 0;
        while (starts[qTile + 1] <= row) {
            qTile++;
        }
        List<int[]> ranges = new ArrayList<>();
        for (int kTile = 0; kTile < grid.tileCount(); kTile++) {
            if (StaMask.allows(grid, window, qTile, kTile)) {
                ranges.add(new int[]{starts[kTile], starts[kTile + 1]});
            }
        }
        if (s > video) {
            ranges.add(new int[]{video, s});
        }
        return ranges;
    }

    private double[] reference(RandomHalfTensor q, RandomHalfTensor k, RandomHalfTensor v, Row row, float scale) {
        int d = q.dim(3);
        double[] query = new double[d];
        for (int c = 0; c < d; c++) {
            query[c] = q.get(0, row.head(), row.row(), c);
        }
        List<int[]> ranges = keyRanges(row.row());
        int count = ranges.stream().mapToInt(r -> r[1] - r[0]).sum();
        double[] scores = new double[count];
        double max = Double.NEGATIVE_INFINITY;
        int n = 0;
        for (int[] range : ranges) {
            for (int j = range[0]; j < range[1]; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) {
                    dot += query[c] * k.get(0, row.head(), j, c);
                }
                scores[n] = dot * scale;
                max = Math.max(max, scores[n++]);
            }
        }
        double sum = 0;
        double[] out = new double[d];
        n = 0;
        for (int[] range : ranges) {
            for (int j = range[0]; j < range[1]; j++) {
                double p = Math.exp(scores[n++] - max);
                sum += p;
                for (int c = 0; c < d; c++) {
                    out[c] += p * v.get(0, row.head(), j, c);
                }
            }
        }
        for (int c = 0; c < d; c++) {
            out[c] /= sum;
        }
        return out;
    }

    /** ‖actual − expected‖ / ‖expected‖ over all sampled rows; {@code actual.get(i)} is row i of {@link #rows}. */
    double relativeL2(List<float[]> actual) {
        double diff = 0, norm = 0;
        for (int i = 0; i < rows.size(); i++) {
            float[] got = actual.get(i);
            for (int c = 0; c < got.length; c++) {
                if (!Float.isFinite(got[c])) {
                    return Double.NaN;
                }
                double e = got[c] - expected[i][c];
                diff += e * e;
                norm += expected[i][c] * expected[i][c];
            }
        }
        return Math.sqrt(diff / norm);
    }
}
