package tileattn.search.picture;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import tileattn.layout.Shape3;
import tileattn.mask.Window;

/**
 * A PNG of which KV tiles one query tile reads under each of a few windows: the T×H×W tile grid drawn as T
 * slices of H×W tiles side by side, one row of slices per window. A query tile at an edge shows how the
 * window's centre is clamped so the window keeps its full size inside the grid.
 *
 * @param queryTile coordinates of the query tile
 */
public record WindowPicture(String title, Shape3 grid, List<Window> windows, TileCoordinate queryTile) {

    /** Coordinates of a tile in the grid, from 0. */
    public record TileCoordinate(int t, int h, int w) {
        int get(int axis) {
            return switch (axis) {
                case 0 -> t;
                case 1 -> h;
                default -> w;
            };
        }
    }

    private static final Color QUERY = new Color(0xD62728);
    private static final Color ATTENDED = new Color(0x4A90C8);
    private static final Color SKIPPED = new Color(0xE6E6E6);

    public WindowPicture {
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("the picture needs at least one window");
        }
        for (Window w : windows) {
            w.checkFits(grid);
        }
        if (queryTile.t() < 0 || queryTile.h() < 0 || queryTile.w() < 0
                || queryTile.t() >= grid.t() || queryTile.h() >= grid.h() || queryTile.w() >= grid.w()) {
            throw new IllegalArgumentException("query tile " + queryTile + " is outside the grid " + grid);
        }
        windows = List.copyOf(windows);
    }

    /** The query tile the pictures use by default: first frame, middle row, last column (two edges clamp). */
    public static TileCoordinate edgeQuery(Shape3 grid) {
        return new TileCoordinate(0, grid.h() / 2, grid.w() - 1);
    }

    public void write(Path file) throws IOException {
        int cell = Math.clamp(150 / Math.max(grid.w(), grid.h()), 6, 22);
        int sliceW = grid.w() * cell, sliceH = grid.h() * cell, gap = 14;
        int perLine = Math.max(1, Math.min(grid.t(), 920 / (sliceW + gap)));
        int lines = (grid.t() + perLine - 1) / perLine;
        int rowTitle = 22, sliceLabel = 16;
        int blockH = rowTitle + lines * (sliceH + sliceLabel + 6) + 10;
        int left = 16, top = 56, legendH = 40;
        int width = Math.max(left * 2 + perLine * (sliceW + gap), 560);
        int height = top + windows.size() * blockH + legendH;
        Canvas c = new Canvas(width, height);
        c.text(title, Canvas.TITLE, Color.BLACK, left, 22);
        c.text("tile grid " + grid.t() + "×" + grid.h() + "×" + grid.w() + " (T×H×W), one slice per t; h grows downwards, w to the right;"
                + " query tile (t, h, w) = (" + queryTile.t() + ", " + queryTile.h() + ", " + queryTile.w() + ")",
                Canvas.SMALL, Color.DARK_GRAY, left, 40);

        int y0 = top;
        boolean anyCentre = false;
        for (Window w : windows) {
            // A whole-dimension extent has no centre of its own; the dot then stays on the query's coordinate.
            int[] centre = new int[3];
            for (int a = 0; a < 3; a++) {
                centre[a] = w.get(a) >= grid.get(a) ? queryTile.get(a)
                        : Window.windowStart(queryTile.get(a), w.get(a), grid.get(a)) + w.get(a) / 2;
            }
            c.text("window " + w + " (" + w.tileVolume(grid) + " of " + grid.volume() + " KV tiles)", Canvas.LABEL, Color.BLACK,
                    left, y0 + 15);
            for (int t = 0; t < grid.t(); t++) {
                int x = left + (t % perLine) * (sliceW + gap);
                int y = y0 + rowTitle + (t / perLine) * (sliceH + sliceLabel + 6);
                for (int h = 0; h < grid.h(); h++) {
                    for (int ww = 0; ww < grid.w(); ww++) {
                        boolean isQuery = t == queryTile.t() && h == queryTile.h() && ww == queryTile.w();
                        boolean attended = reads(grid, w, queryTile, t, h, ww);
                        c.g.setColor(isQuery ? QUERY : attended ? ATTENDED : SKIPPED);
                        c.g.fillRect(x + ww * cell + 1, y + h * cell + 1, cell - 2, cell - 2);
                        if (t == centre[0] && h == centre[1] && ww == centre[2] && !isQuery) {
                            anyCentre = true;
                            c.g.setColor(Color.BLACK);
                            int r = Math.max(2, cell / 4);
                            c.g.fillOval(x + ww * cell + cell / 2 - r, y + h * cell + cell / 2 - r, 2 * r, 2 * r);
                        }
                    }
                }
                c.g.setColor(Color.GRAY);
                c.g.setStroke(new BasicStroke(1));
                c.g.drawRect(x, y, sliceW, sliceH);
                c.centred("t = " + t, Canvas.SMALL, Color.BLACK, x + sliceW / 2, y + sliceH + 12);
            }
            y0 += blockH;
        }
        int ly = height - legendH + 16, lx = left;
        lx = legend(c, lx, ly, QUERY, "query tile", false);
        lx = legend(c, lx, ly, ATTENDED, "KV tiles it reads", false);
        if (anyCentre) {
            lx = legend(c, lx, ly, ATTENDED, "window centre (clamped to stay inside the grid)", true);
        }
        legend(c, lx, ly, SKIPPED, "skipped", false);
        c.save(file);
    }

    /** Whether the query tile reads KV tile (t, h, w) under the window: inside the clamped window on every axis. */
    static boolean reads(Shape3 grid, Window window, TileCoordinate query, int t, int h, int w) {
        int[] kv = {t, h, w};
        for (int a = 0; a < 3; a++) {
            int start = Window.windowStart(query.get(a), window.get(a), grid.get(a));
            if (kv[a] < start || kv[a] >= start + Math.min(window.get(a), grid.get(a))) {
                return false;
            }
        }
        return true;
    }

    private static int legend(Canvas c, int x, int y, Color color, String label, boolean dot) {
        c.g.setColor(color);
        c.g.fillRect(x, y - 10, 12, 12);
        if (dot) {
            c.g.setColor(Color.BLACK);
            c.g.fillOval(x + 3, y - 7, 6, 6);
        }
        c.text(label, Canvas.SMALL, Color.BLACK, x + 16, y);
        return x + 16 + Canvas.width(Canvas.SMALL, label) + 18;
    }
}
