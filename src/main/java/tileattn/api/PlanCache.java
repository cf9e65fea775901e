package tileattn.api;

import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import tileattn.cuda.CudaContext;
import tileattn.cuda.DeviceScope;
import tileattn.kernels.KvRangePlan;
import tileattn.kernels.TileAttentionKernel;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/**
 * The attention kernels' work tables on the device, built and uploaded once per (layout, windows) or dense shape,
 * so that a DiT calling attention every layer and step pays for them once. Each plan lives in its own
 * {@link DeviceScope}; beyond {@link #CAPACITY} plans the least recently used one is freed (closing its scope
 * waits for the device, so no queued kernel still reads it). Not thread-safe: {@link GpuBackend} holds its lock
 * from the lookup to the launch.
 */
final class PlanCache implements AutoCloseable {

    static final int CAPACITY = 32;

    /** {@code layout} is null for dense plans. */
    private record Key(TokenLayout layout, int sequenceLength, int heads, List<Window> windows) {
    }

    private record Entry(DeviceScope scope, TileAttentionKernel.DevicePlan plan) {
    }

    private final CudaContext context;
    private final Map<Key, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);

    PlanCache(CudaContext context) {
        this.context = context;
    }

    TileAttentionKernel.DevicePlan sta(TokenLayout layout, Window[] windowsPerHead) {
        Key key = new Key(layout, layout.sequenceLength(), windowsPerHead.length, Arrays.asList(windowsPerHead.clone()));
        return get(key, () -> KvRangePlan.sta(layout, windowsPerHead));
    }

    TileAttentionKernel.DevicePlan dense(int sequenceLength, int heads) {
        return get(new Key(null, sequenceLength, heads, List.of()), () -> KvRangePlan.dense(sequenceLength, heads));
    }

    int size() {
        return entries.size();
    }

    private TileAttentionKernel.DevicePlan get(Key key, Supplier<KvRangePlan> build) {
        Entry entry = entries.get(key);
        if (entry != null) {
            return entry.plan;
        }
        KvRangePlan plan = build.get();
        DeviceScope scope = context.openScope();
        try {
            TileAttentionKernel.DevicePlan uploaded = TileAttentionKernel.upload(plan, scope);
            // A copy from pageable host memory may still be in flight when cuMemcpyHtoD returns, and kernels on
            // non-blocking streams do not wait for it: wait here, once per plan.
            context.synchronize();
            entries.put(key, new Entry(scope, uploaded));
        } catch (RuntimeException e) {
            closeQuietly(scope, e);
            throw e;
        }
        evictBeyondCapacity();
        return entries.get(key).plan;
    }

    private void evictBeyondCapacity() {
        Iterator<Entry> eldestFirst = entries.values().iterator();
        while (entries.size() > CAPACITY && eldestFirst.hasNext()) {
            Entry eldest = eldestFirst.next();
            eldestFirst.remove();
            eldest.scope.close();
        }
    }

    private static void closeQuietly(DeviceScope scope, RuntimeException pending) {
        try {
            scope.close();
        } catch (RuntimeException e) {
            pending.addSuppressed(e);
        }
    }

    @Override
    public void close() {
        RuntimeException failure = null;
        for (Entry entry : entries.values()) {
            try {
                entry.scope.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        entries.clear();
        if (failure != null) {
            throw failure;
        }
    }
}
