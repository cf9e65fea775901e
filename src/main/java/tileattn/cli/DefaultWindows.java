package tileattn.cli;

import java.util.ArrayList;
import java.util.List;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.Window;

/** Default STA windows of demo and bench, fitted to whatever grid the user's video and tile give. */
final class DefaultWindows {

    private DefaultWindows() {
    }

    /**
     * The given odd extents with each one capped at the grid (a capped extent is the whole dimension, which
     * {@link Window#checkFits} accepts), without repeats, in the given order.
     */
    static List<Window> capped(TileGrid grid, int[]... extents) {
        Shape3 n = grid.tiles();
        List<Window> list = new ArrayList<>();
        for (int[] w : extents) {
            Window window = new Window(Math.min(w[0], n.t()), Math.min(w[1], n.h()), Math.min(w[2], n.w()));
            if (!list.contains(window)) {
                list.add(window);
            }
        }
        return list;
    }
}
