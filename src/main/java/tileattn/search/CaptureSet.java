package tileattn.search;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;
import java.util.TreeSet;
import tileattn.layout.Shape3;

/**
 * Captured attention inputs of one model run (or several runs of the same shapes): every capture has q, k, v of
 * [batch, heads, T·H·W + textLength, headDim]. Every captured step holds every layer 0..layers-1 (at least one
 * capture each), so a strategy can be made for all of them.
 */
public record CaptureSet(Shape3 video, int textLength, int batch, int heads, int headDim, List<Capture> captures,
                         String description) {

    public CaptureSet {
        if (captures.isEmpty()) {
            throw new IllegalArgumentException(description + ": no captures");
        }
        if (textLength < 0 || batch < 1 || heads < 1 || headDim < 1) {
            throw new IllegalArgumentException(description + ": text length, batch, heads and head dim must be positive (text >= 0)");
        }
        captures = captures.stream().sorted(Comparator.comparingInt(Capture::step).thenComparingInt(Capture::layer)
                .thenComparing(Capture::name)).toList();
        TreeMap<Integer, TreeSet<Integer>> layersByStep = new TreeMap<>();
        for (Capture c : captures) {
            if (c.step() < 0 || c.layer() < 0) {
                throw new IllegalArgumentException(c.name() + ": step and layer must be >= 0, got step " + c.step() + ", layer " + c.layer());
            }
            layersByStep.computeIfAbsent(c.step(), s -> new TreeSet<>()).add(c.layer());
        }
        int layers = layersByStep.values().stream().mapToInt(s -> s.last() + 1).max().orElseThrow();
        for (var e : layersByStep.entrySet()) {
            for (int l = 0; l < layers; l++) {
                if (!e.getValue().contains(l)) {
                    throw new IllegalArgumentException(description + ": step " + e.getKey() + " has no capture of layer " + l
                            + " (other steps reach layer " + (layers - 1) + "); every captured step needs every layer");
                }
            }
        }
    }

    public int sequenceLength() {
        return video.volume() + textLength;
    }

    /** The captured denoising steps, ascending. */
    public int[] steps() {
        return captures.stream().mapToInt(Capture::step).distinct().sorted().toArray();
    }

    public int layers() {
        return captures.stream().mapToInt(Capture::layer).max().orElseThrow() + 1;
    }

    /** The captures of one step and layer (several when several prompts were captured). */
    public List<Capture> of(int step, int layer) {
        List<Capture> list = new ArrayList<>();
        for (Capture c : captures) {
            if (c.step() == step && c.layer() == layer) {
                list.add(c);
            }
        }
        return list;
    }
}
