package tileattn.search;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import tileattn.layout.Shape3;
import tileattn.mask.Window;

/** Lists of windows the search measures. */
public final class CandidateWindows {

    /**
     * The candidates the STA authors chose from for HunyuanVideo (tile grid 5×6×10), as their published
     * strategy uses them after its dense steps: whole T with 3×3 spatial tiles, one frame of the whole
     * picture, 3×3×5, whole T and W in one row of tiles, whole T and H in one column of tiles.
     */
    public static final List<Window> STA_HUNYUAN = List.of(
            new Window(5, 3, 3), new Window(1, 6, 10), new Window(3, 3, 5), new Window(5, 1, 10), new Window(5, 6, 1));

    private CandidateWindows() {
    }

    /**
     * Every window the grid allows: each extent odd up to the grid's extent, or the grid's extent itself (the
     * whole dimension). Includes the full window.
     */
    public static List<Window> all(Shape3 grid) {
        List<Window> windows = new ArrayList<>();
        for (int t : extents(grid.t())) {
            for (int h : extents(grid.h())) {
                for (int w : extents(grid.w())) {
                    windows.add(new Window(t, h, w));
                }
            }
        }
        return windows;
    }

    private static List<Integer> extents(int n) {
        List<Integer> list = new ArrayList<>();
        for (int k = 1; k < n; k += 2) {
            list.add(k);
        }
        list.add(n);
        return list;
    }

    /**
     * Parses a list such as {@code "3x3x3,5x6x1"} (windows as TxHxW in tiles, separated by commas, semicolons or
     * spaces) and checks each against the grid; duplicates are dropped.
     */
    public static List<Window> parse(String list, Shape3 grid) {
        Set<Window> windows = new LinkedHashSet<>();
        for (String item : list.trim().split("[,;\\s]+")) {
            if (item.isEmpty()) {
                continue;
            }
            if (!item.matches("\\d+[xX]\\d+[xX]\\d+")) {
                throw new IllegalArgumentException("candidate '" + item + "' is not a window TxHxW in tiles (e.g. 3x3x3)");
            }
            windows.add(checked(Window.parse(item), grid));
        }
        if (windows.isEmpty()) {
            throw new IllegalArgumentException("the candidate list '" + list + "' holds no window");
        }
        return List.copyOf(windows);
    }

    /** Checks that every window fits the grid, naming the first that does not. */
    public static List<Window> checkAll(List<Window> windows, Shape3 grid) {
        for (Window w : windows) {
            checked(w, grid);
        }
        return windows;
    }

    private static Window checked(Window w, Shape3 grid) {
        try {
            w.checkFits(grid);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("candidate " + w + " does not fit the tile grid " + grid + ": " + e.getMessage(), e);
        }
        return w;
    }

    /** The list with the full window appended when it is missing (the fallback of the budget rule). */
    public static List<Window> withFull(List<Window> windows, Shape3 grid) {
        Window full = Window.full(grid);
        if (windows.contains(full)) {
            return windows;
        }
        List<Window> list = new ArrayList<>(windows);
        list.add(full);
        return List.copyOf(list);
    }
}
