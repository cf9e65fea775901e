package tileattn.dit;

import java.util.Arrays;
import tileattn.mask.Window;

/**
 * The STA window of every head for a given denoising step and layer. A window-search strategy (steps × layers ×
 * heads) plugs in as {@code strategy::windowsFor}.
 */
@FunctionalInterface
public interface WindowSchedule {

    /** One window per head, in head order. */
    Window[] windows(int step, int layer);

    /** The same window for every step, layer and head. */
    static WindowSchedule uniform(Window window, int heads) {
        Window[] all = new Window[heads];
        Arrays.fill(all, window);
        return (step, layer) -> all.clone();
    }

    /** {@code layerHead[layer][head]}, the same at every step. */
    static WindowSchedule perLayer(Window[][] layerHead) {
        Window[][] copy = new Window[layerHead.length][];
        for (int l = 0; l < copy.length; l++) {
            copy[l] = layerHead[l].clone();
        }
        return (step, layer) -> {
            if (layer < 0 || layer >= copy.length) {
                throw new IllegalArgumentException("the STA windows cover " + copy.length + " layers, not layer " + layer);
            }
            return copy[layer].clone();
        };
    }
}
