package tileattn.dit;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceScope;

/**
 * Where the GPU time of a {@link GpuWanModel} forward goes: an event is recorded on the model's stream whenever the
 * kind of work changes, and the time between two events is charged to the kind that began at the first. Events are
 * pooled and reused from one forward to the next; reading the times waits for the device.
 */
public final class StepProfile {

    /** Kinds of work in a forward, in the order they first appear in a block. */
    public enum Part {
        TIME_EMBEDDING("time embedding + modulation"),
        PATCH_EMBED("patch embed + head + unpatchify"),
        QKV_GEMM("qkv gemm"),
        QK_NORM_ROPE("q/k RMSNorm + RoPE, q/k/v to heads"),
        VSA_SELECTION("VSA selection (coarse scores + top-k)"),
        SELF_ATTENTION("self-attention (output as token rows)"),
        SELF_OUT_GEMM("self out gemm"),
        RESIDUAL_NORM("residual + norm + modulation"),
        CROSS_Q_GEMM("cross q gemm"),
        CROSS_Q_TO_HEADS("cross q RMSNorm + to heads"),
        TEXT_TO_HEADS("text k RMSNorm, k/v to heads"),
        CROSS_ATTENTION("cross-attention kernel"),
        CROSS_OUT_GEMM("cross out gemm"),
        FFN_UP_GEMM("ffn up gemm (+ GELU epilogue)"),
        FFN_DOWN_GEMM("ffn down gemm");

        private final String label;

        Part(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }

        /** A short name without spaces, for TSV columns. */
        public String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final DeviceScope scope;
    private final List<CudaEvent> events = new ArrayList<>();
    private final List<Part> parts = new ArrayList<>();
    private int used;

    public StepProfile(DeviceScope scope) {
        this.scope = scope;
    }

    /** Ends the current part (if any) and begins {@code part} at this point of the stream. */
    void begin(Part part, CudaStream stream) {
        record(stream);
        parts.add(part);
    }

    /** Ends the current part. */
    void end(CudaStream stream) {
        record(stream);
        parts.add(null);
    }

    private void record(CudaStream stream) {
        if (used == events.size()) {
            events.add(scope.createEvent());
        }
        events.get(used++).record(stream);
    }

    /** Milliseconds per part since the last call (waits for the device), then starts over. */
    public Map<Part, Double> takeMillis() {
        Map<Part, Double> ms = new EnumMap<>(Part.class);
        for (Part p : Part.values()) {
            ms.put(p, 0.0);
        }
        for (int i = 0; i + 1 < used; i++) {
            Part p = parts.get(i);
            if (p != null) {
                ms.merge(p, (double) CudaEvent.elapsedMillis(events.get(i), events.get(i + 1)), Double::sum);
            }
        }
        used = 0;
        parts.clear();
        return ms;
    }
}
