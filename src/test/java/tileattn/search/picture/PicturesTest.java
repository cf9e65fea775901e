package tileattn.search.picture;

import static org.junit.jupiter.api.Assertions.*;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalDouble;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.layout.Shape3;
import tileattn.mask.Window;

class PicturesTest {

    @Test
    void heatMapColoursEachCellByItsValue(@TempDir Path dir) throws Exception {
        double[][] values = {{0, 0.5, 1}, {0.25, 0.75, 0.1}};
        Path file = dir.resolve("map.png");
        new HeatMap("title", "", "layer", "head", "scale", values, null, 0, 1, Palette.BLUES, OptionalDouble.of(0.3), "budget")
                .write(file);
        BufferedImage image = ImageIO.read(file.toFile());
        assertNotNull(image, "a readable PNG");
        for (double[] row : values) {
            for (double v : row) {
                assertTrue(contains(image, Palette.BLUES.at(v)), "a cell of value " + v + " is drawn in its colour");
            }
        }
        assertFalse(contains(image, Palette.HEAT.at(0.5)), "another palette's colour is not");
    }

    @Test
    void ticksAreRoundAndInsideTheRange() {
        assertArrayEquals(new double[]{0, 0.01, 0.02, 0.03, 0.04, 0.05}, HeatMap.ticks(0, 0.05), 1e-12);
        assertArrayEquals(new double[]{0, 0.2, 0.4, 0.6, 0.8, 1}, HeatMap.ticks(0, 1), 1e-12);
        assertArrayEquals(new double[]{0, 0.05, 0.1, 0.15, 0.2, 0.25}, HeatMap.ticks(0, 0.25), 1e-12);
        assertArrayEquals(new double[]{0, 0.05, 0.1, 0.15}, HeatMap.ticks(0, 0.173), 1e-12);
        assertEquals("0.05", HeatMap.format(0.05));
        assertEquals("0.125", HeatMap.format(0.125));
        assertEquals("1.0e-04", HeatMap.format(1e-4));
    }

    @Test
    void windowPictureMarksExactlyTheTilesTheWindowReads(@TempDir Path dir) throws Exception {
        Shape3 grid = new Shape3(4, 5, 7);
        Window window = new Window(3, 3, 5);
        WindowPicture.TileCoordinate q = WindowPicture.edgeQuery(grid);
        assertEquals(new WindowPicture.TileCoordinate(0, 2, 6), q);
        int marked = 0;
        for (int t = 0; t < 4; t++) {
            for (int h = 0; h < 5; h++) {
                for (int w = 0; w < 7; w++) {
                    boolean reads = WindowPicture.reads(grid, window, q, t, h, w);
                    boolean expected = Window.allows(q.t(), t, 3, 4) && Window.allows(q.h(), h, 3, 5) && Window.allows(q.w(), w, 5, 7);
                    assertEquals(expected, reads, "tile " + t + "," + h + "," + w);
                    marked += reads ? 1 : 0;
                }
            }
        }
        assertEquals(window.tileVolume(grid), marked);
        Path file = dir.resolve("w.png");
        new WindowPicture("t", grid, List.of(window, Window.full(grid)), q).write(file);
        BufferedImage image = ImageIO.read(file.toFile());
        assertTrue(image.getWidth() >= 560 && image.getHeight() > 100);
        assertTrue(contains(image, new Color(0xD62728)), "the query tile is drawn");
        var e = assertThrows(IllegalArgumentException.class,
                () -> new WindowPicture("t", grid, List.of(new Window(2, 1, 1)), q));
        assertTrue(e.getMessage().contains("even"), e.getMessage());
    }

    private static boolean contains(BufferedImage image, Color c) {
        int rgb = c.getRGB();
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                if (image.getRGB(x, y) == rgb) {
                    return true;
                }
            }
        }
        return false;
    }
}
