package tileattn.search;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import tileattn.api.AttentionBackend;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.TokenPermutation;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Measures every candidate window of every head against dense attention on captured inputs. Dense attention is
 * computed once per capture; the full window is dense by definition and gets error 0 without being run.
 *
 * <p>Error of a head = ‖O_window − O_dense‖₂ / ‖O_dense‖₂ over the head's video query tokens of all batch
 * entries (text queries attend everything under every window, so they would only dilute it), averaged over the
 * captures of the same step and layer.
 */
public final class WindowSearch {

    /** Progress of a search, one unit per attention computed. */
    public interface Progress {
        void start(long units);

        void advance(String doing);

        static Progress none() {
            return new Progress() {
                @Override
                public void start(long units) {
                }

                @Override
                public void advance(String doing) {
                }
            };
        }
    }

    private final AttentionBackend backend;

    public WindowSearch(AttentionBackend backend) {
        this.backend = backend;
    }

    public ErrorTable measure(CaptureSet set, Shape3 tile, List<Window> candidates, StepPlan plan, Progress progress)
            throws IOException {
        TokenLayout layout = TokenLayout.of(set.video(), tile, set.textLength());
        CandidateWindows.checkAll(candidates, layout.grid().tiles());
        Window full = Window.full(layout.grid().tiles());
        int[] steps = plan.searchedSteps();
        int layers = set.layers(), heads = set.heads();
        long computed = candidates.stream().filter(w -> !w.equals(full)).count() + 1;
        long units = 0;
        for (int step : steps) {
            for (int l = 0; l < layers; l++) {
                units += set.of(step, l).size() * computed;
            }
        }
        progress.start(units);
        float scale = CpuAttention.defaultScale(set.headDim());
        double[][][][] errors = new double[steps.length][layers][heads][candidates.size()];
        for (int i = 0; i < steps.length; i++) {
            for (int l = 0; l < layers; l++) {
                List<Capture> captures = set.of(steps[i], l);
                if (captures.isEmpty()) {
                    throw new IllegalArgumentException(set.description() + ": no capture of step " + steps[i] + ", layer " + l);
                }
                for (Capture capture : captures) {
                    String where = "step " + steps[i] + " layer " + l;
                    Capture.Qkv raster = capture.load();
                    check(capture, "q", raster.q(), set);
                    check(capture, "k", raster.k(), set);
                    check(capture, "v", raster.v(), set);
                    FloatTensor q = TokenPermutation.toTileOrder(raster.q(), layout);
                    FloatTensor k = TokenPermutation.toTileOrder(raster.k(), layout);
                    FloatTensor v = TokenPermutation.toTileOrder(raster.v(), layout);
                    FloatTensor dense = backend.dense(q, k, v, scale);
                    progress.advance(where + " dense");
                    for (int c = 0; c < candidates.size(); c++) {
                        Window w = candidates.get(c);
                        if (w.equals(full)) {
                            continue;
                        }
                        Window[] perHead = new Window[heads];
                        Arrays.fill(perHead, w);
                        double[] e = relativeErrors(backend.sta(q, k, v, layout, perHead, scale), dense, layout.videoTokens());
                        for (int h = 0; h < heads; h++) {
                            errors[i][l][h][c] += e[h] / captures.size();
                        }
                        progress.advance(where + " " + w);
                    }
                }
            }
        }
        return new ErrorTable(layout, candidates, steps, layers, heads, errors);
    }

    /** Shape, and finiteness: a NaN would spread through its rows and make every error NaN. */
    private static void check(Capture capture, String name, FloatTensor t, CaptureSet set) {
        int[] expected = {set.batch(), set.heads(), set.sequenceLength(), set.headDim()};
        if (!Arrays.equals(t.shape(), expected)) {
            throw new IllegalArgumentException(capture.name() + ": " + name + " has shape " + t.shapeString() + ", expected "
                    + Arrays.toString(expected) + " [batch, heads, T*H*W + text, head dim]");
        }
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
                int d = expected[3], s = expected[2], heads = expected[1];
                throw new IllegalArgumentException(capture.name() + ": " + name + " holds " + data[i] + " at index ["
                        + i / (d * s * heads) + ", " + i / (d * s) % heads + ", " + i / d % s + ", " + i % d + "] (raster order)");
            }
        }
    }

    /**
     * Per head, ‖out − ref‖ / ‖ref‖ over the first {@code videoTokens} tokens (tile order puts video first) of
     * every batch entry.
     */
    static double[] relativeErrors(FloatTensor out, FloatTensor ref, int videoTokens) {
        int b = ref.dim(0), heads = ref.dim(1), s = ref.dim(2), d = ref.dim(3);
        float[] o = out.data(), r = ref.data();
        double[] diff = new double[heads], norm = new double[heads];
        for (int bi = 0; bi < b; bi++) {
            for (int h = 0; h < heads; h++) {
                int base = (bi * heads + h) * s * d;
                for (int i = base; i < base + videoTokens * d; i++) {
                    double delta = (double) o[i] - r[i];
                    diff[h] += delta * delta;
                    norm[h] += (double) r[i] * r[i];
                }
            }
        }
        double[] e = new double[heads];
        for (int h = 0; h < heads; h++) {
            e[h] = diff[h] == 0 ? 0 : Math.sqrt(diff[h] / norm[h]);
        }
        return e;
    }
}
