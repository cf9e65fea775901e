package tileattn.layout;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TileGridTest {

    @Test
    void permutationsAreInverseBijectionsForRandomShapes() {
        Random rnd = new Random(7);
        for (int trial = 0; trial < 200; trial++) {
            Shape3 video = new Shape3(1 + rnd.nextInt(9), 1 + rnd.nextInt(13), 1 + rnd.nextInt(17));
            Shape3 tile = new Shape3(1 + rnd.nextInt(6), 1 + rnd.nextInt(8), 1 + rnd.nextInt(8));
            TileGrid grid = new TileGrid(video, tile);
            int[] fwd = grid.rasterToTileOrder();
            int[] inv = grid.tileOrderToRaster();
            boolean[] seen = new boolean[fwd.length];
            for (int r = 0; r < fwd.length; r++) {
                assertFalse(seen[fwd[r]], "tile-order slot used twice");
                seen[fwd[r]] = true;
                assertEquals(r, inv[fwd[r]]);
            }
            assertEquals(video.volume(), grid.tileStart(grid.tileCount()));
        }
    }

    @Test
    void tokensOfATileAreContiguousAndInRasterOrder() {
        Shape3 video = new Shape3(5, 7, 9);
        TileGrid grid = new TileGrid(video, new Shape3(2, 3, 4));
        int[] inv = grid.tileOrderToRaster();
        for (int tile = 0; tile < grid.tileCount(); tile++) {
            int prev = -1;
            for (int pos = grid.tileStart(tile); pos < grid.tileStart(tile + 1); pos++) {
                int r = inv[pos];
                int t = r / (7 * 9), h = r / 9 % 7, w = r % 9;
                assertEquals(tile, grid.tileOf(t, h, w));
                assertTrue(r > prev, "raster order inside the tile");
                prev = r;
            }
        }
    }

    @Test
    void partialEdgeTilesHoldOnlyRealTokens() {
        TileGrid grid = new TileGrid(new Shape3(21, 30, 52), new Shape3(6, 8, 8));
        assertEquals(new Shape3(4, 4, 7), grid.tiles());
        assertEquals(6 * 8 * 8, grid.tileTokens(0));
        int last = grid.tileCount() - 1;
        assertEquals(3 * 6 * 4, grid.tileTokens(last));
        assertEquals(21 * 30 * 52, Arrays.stream(grid.tileStarts()).max().orElseThrow());
    }

    @Test
    void textTokensKeepTheirPlace() {
        TokenLayout layout = TokenLayout.of(new Shape3(2, 3, 5), new Shape3(2, 2, 2), 4);
        int[] fwd = layout.rasterToTileOrder();
        assertEquals(34, fwd.length);
        for (int i = 30; i < 34; i++) {
            assertEquals(i, fwd[i]);
        }
    }
}
