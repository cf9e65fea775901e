package tileattn.blas;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.tensor.DType;

/**
 * Matrix products on the GPU through cuBLASLt, as a PyTorch {@code Linear} computes them: {@code Y[m, n] =
 * X[m, k] · W[n, k]ᵀ (+ bias[n])}, all row-major, bf16 operands, fp32 accumulation and scale, the output in bf16 or
 * fp32. Row-major Y is column-major Yᵀ = W·Xᵀ, so cuBLASLt multiplies W (transposed) by X with no copies, and its bias
 * epilogue adds the bias along Y's rows.
 *
 * <p>The chosen algorithm, descriptors and layouts are kept per shape, epilogue and operand alignment, so the
 * heuristic query runs once per shape; for large shapes the first call times the heuristic's candidates on its
 * operands and keeps the fastest. The workspace (32 MiB) belongs to a {@link DeviceScope} of its own, freed
 * by {@link #close()}. One instance per context; calls are serialised.
 */
public final class Gemm implements AutoCloseable {

    /** What happens to the product before it is stored. */
    public enum Epilogue {
        /** Y = X·Wᵀ. */
        NONE(CublasLt.EPILOGUE_DEFAULT, false),
        /** Y = X·Wᵀ + bias. */
        BIAS(CublasLt.EPILOGUE_BIAS, true),
        /** Y = GELU(X·Wᵀ + bias) with cuBLASLt's GELU (documented as the tanh approximation). */
        GELU_BIAS(CublasLt.EPILOGUE_GELU_BIAS, true);

        final int code;
        final boolean needsBias;

        Epilogue(int code, boolean needsBias) {
            this.code = code;
            this.needsBias = needsBias;
        }
    }

    static final long WORKSPACE_BYTES = 32L << 20;
    private static final int HEURISTIC_CANDIDATES = 8;

    /** One product's shape and form; {@code accumulate}: y is added to (beta 1) rather than overwritten. */
    private record Key(long m, long n, long k, Epilogue epilogue, DType out, int alignX, int alignW, int alignY,
                       boolean accumulate) {
    }

    /** One algorithm the heuristic offers, with the workspace it asks for. */
    private record Candidate(MemorySegment algo, long workspaceBytes) {
    }

    /**
     * Descriptors of one shape and the algorithm in use; {@code candidates} holds the heuristic's other offers until
     * the first call with operands times them ({@link #tune}), then only the fastest.
     */
    private static final class Plan {
        final MemorySegment desc, wLayout, xLayout, yLayout, preference;
        List<Candidate> candidates;

        Plan(MemorySegment desc, MemorySegment wLayout, MemorySegment xLayout, MemorySegment yLayout,
             MemorySegment preference, List<Candidate> candidates) {
            this.desc = desc;
            this.wLayout = wLayout;
            this.xLayout = xLayout;
            this.yLayout = yLayout;
            this.preference = preference;
            this.candidates = candidates;
        }

        Candidate chosen() {
            return candidates.getFirst();
        }
    }

    /**
     * Products of at least this many multiply-adds time the heuristic's candidates once and keep the fastest: its
     * first pick is a model's guess and is sometimes 10-30% off for large, long-K shapes. Smaller ones keep the first.
     */
    static final long TUNE_MIN_MACS = 1L << 24;
    private static final int TUNE_RUNS = 3;

    private final CublasLt lib;
    private final CudaContext context;
    private final MemorySegment handle;
    private final DeviceScope scope;
    private final DeviceBuffer workspace;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment one;
    private final MemorySegment zero;
    private final Map<Key, Plan> plans = new LinkedHashMap<>();
    private boolean open = true;

    private Gemm(CublasLt lib, CudaContext context) {
        this.lib = lib;
        this.context = context;
        context.makeCurrent();
        this.handle = lib.create();
        DeviceScope s = null;
        try {
            s = context.openScope();
            this.workspace = s.allocate(WORKSPACE_BYTES);
        } catch (RuntimeException e) {
            if (s != null) {
                s.close();
            }
            lib.destroy(handle);
            throw e;
        }
        this.scope = s;
        this.one = arena.allocateFrom(JAVA_FLOAT, 1f);
        this.zero = arena.allocateFrom(JAVA_FLOAT, 0f);
    }

    /**
     * cuBLASLt on a context (made current here and before every call).
     *
     * @throws CublasLtUnavailableException when libcublasLt is not found or not usable, naming what is missing
     */
    public static Gemm open(CudaContext context) {
        Objects.requireNonNull(context, "context");
        return new Gemm(CublasLt.load(), context);
    }

    /** The library file and its version, for logs. */
    public String describe() {
        long v = lib.version();
        return "cuBLASLt " + v / 10000 + "." + v / 100 % 100 + "." + v % 100 + " (" + lib.file() + ")";
    }

    /**
     * Queues {@code y = epilogue(x · wᵀ + bias)} on {@code stream}. x is [..., k] (its leading dimensions are the
     * rows m), w is [n, k], y is [..., n] with m rows, bias is [n] of y's type (BIAS and GELU_BIAS) or null (NONE).
     * x and w are BF16; y is BF16 or F32. y must not overlap x, w or bias.
     */
    public synchronized void linear(DeviceTensor x, DeviceTensor w, DeviceTensor bias, DeviceTensor y,
                                    Epilogue epilogue, CudaStream stream) {
        checkOpen();
        Objects.requireNonNull(epilogue, "epilogue");
        Objects.requireNonNull(stream, "stream");
        long[] mnk = shapes(x, w, bias, y, epilogue);
        execute(new Key(mnk[0], mnk[1], mnk[2], epilogue, y.dtype(), alignment(x), alignment(w), alignment(y), false),
                x, w, bias, y, stream);
    }

    /**
     * Queues {@code y += x · wᵀ + bias} on {@code stream}: a residual add fused into the product, which reads y as its
     * C operand and writes it in place. x is [..., k] BF16 with m rows, w [n, k] BF16, y [..., n] BF16 or F32 with m
     * rows, bias [n] of y's type or null. y must not overlap x, w or bias.
     */
    public synchronized void accumulate(DeviceTensor x, DeviceTensor w, DeviceTensor bias, DeviceTensor y,
                                        CudaStream stream) {
        checkOpen();
        Objects.requireNonNull(stream, "stream");
        Epilogue epilogue = bias == null ? Epilogue.NONE : Epilogue.BIAS;
        long[] mnk = shapes(x, w, bias, y, epilogue);
        execute(new Key(mnk[0], mnk[1], mnk[2], epilogue, y.dtype(), alignment(x), alignment(w), alignment(y), true),
                x, w, bias, y, stream);
    }

    /** Plans (once per key), tunes (once per plan) and queues one product whose operands were checked. */
    private void execute(Key key, DeviceTensor x, DeviceTensor w, DeviceTensor bias, DeviceTensor y,
                         CudaStream stream) {
        if (!stream.context().sameContextAs(context)) {
            throw new IllegalArgumentException("the stream belongs to another CUDA context than this Gemm");
        }
        for (DeviceTensor t : new DeviceTensor[]{x, w, y, bias}) {
            if (t != null && !t.buffer().scope().context().sameContextAs(context)) {
                throw new IllegalArgumentException("tensor " + t + " belongs to another CUDA context than this Gemm");
            }
        }
        if (key.m == 0 || key.n == 0) {
            return;
        }
        context.makeCurrent();
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = plan(key, bias);
            plans.put(key, plan);
        }
        if (key.epilogue.needsBias) {
            lib.matmulDescSetLong(plan.desc, CublasLt.DESC_BIAS_POINTER, bias.buffer().address());
        }
        if (plan.candidates.size() > 1) {
            tune(plan, key, x, w, y, stream);
        }
        run(plan, plan.chosen(), key, x, w, y, stream);
    }

    private void run(Plan plan, Candidate c, Key key, DeviceTensor x, DeviceTensor w, DeviceTensor y,
                     CudaStream stream) {
        long yAddress = y.buffer().address();
        lib.matmul(key.m + "x" + key.n + "x" + key.k + " " + key.epilogue, handle, plan.desc, one,
                w.buffer().address(), plan.wLayout, x.buffer().address(), plan.xLayout, key.accumulate ? one : zero,
                yAddress, plan.yLayout, yAddress, plan.yLayout, c.algo, workspace.address(), c.workspaceBytes,
                stream.handle());
    }

    /**
     * Times each candidate on the call's own operands and keeps the fastest; a candidate that cuBLASLt refuses at
     * run time is dropped. y is overwritten with the same product each time, and once more by the caller; a product
     * that adds to y gets y back from a copy taken first. Waits for the stream, once per shape.
     */
    private void tune(Plan plan, Key key, DeviceTensor x, DeviceTensor w, DeviceTensor y, CudaStream stream) {
        if (!key.accumulate) {
            tuneOn(plan, key, x, w, y, stream);
            return;
        }
        try (DeviceScope saved = context.openScope()) {
            DeviceBuffer copy = saved.allocate(y.bytes());
            copy.copyFromAsync(y.buffer(), stream);
            tuneOn(plan, key, x, w, y, stream);
            y.buffer().copyFromAsync(copy, stream);
            stream.synchronize();
        }
    }

    private void tuneOn(Plan plan, Key key, DeviceTensor x, DeviceTensor w, DeviceTensor y, CudaStream stream) {
        Candidate best = null;
        float bestMs = Float.MAX_VALUE;
        RuntimeException firstFailure = null;
        CudaEvent start = scope.createEvent(), end = scope.createEvent();
        for (Candidate c : plan.candidates) {
            try {
                run(plan, c, key, x, w, y, stream);   // warm-up, and the check that it runs at all
                start.record(stream);
                for (int i = 0; i < TUNE_RUNS; i++) {
                    run(plan, c, key, x, w, y, stream);
                }
                end.record(stream);
                float ms = CudaEvent.elapsedMillis(start, end);
                if (ms < bestMs) {
                    bestMs = ms;
                    best = c;
                }
            } catch (CublasLtException e) {
                if (firstFailure == null) {
                    firstFailure = e;
                }
            }
        }
        if (best == null) {
            throw firstFailure;
        }
        plan.candidates = List.of(best);
    }

    /** m, n, k from the operands, after checking their types, shapes and overlaps. */
    static long[] shapes(DeviceTensor x, DeviceTensor w, DeviceTensor bias, DeviceTensor y, Epilogue epilogue) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(w, "w");
        Objects.requireNonNull(y, "y");
        if (x.dtype() != DType.BF16 || w.dtype() != DType.BF16) {
            throw new IllegalArgumentException("gemm takes BF16 x and w, got x " + x.dtype() + " and w " + w.dtype());
        }
        if (y.dtype() != DType.BF16 && y.dtype() != DType.F32) {
            throw new IllegalArgumentException("gemm writes BF16 or F32, y is " + y.dtype());
        }
        if (w.rank() != 2) {
            throw new IllegalArgumentException("w must be [n, k] (PyTorch's Linear weight layout), got " + w.shapeString());
        }
        if (x.rank() < 1 || y.rank() < 1) {
            throw new IllegalArgumentException("x and y need at least one dimension, got " + x.shapeString() + " and "
                    + y.shapeString());
        }
        long n = w.dim(0), k = w.dim(1);
        if (x.dim(x.rank() - 1) != k) {
            throw new IllegalArgumentException("x " + x.shapeString() + " has rows of " + x.dim(x.rank() - 1)
                    + " but w " + w.shapeString() + " expects k = " + k);
        }
        if (y.dim(y.rank() - 1) != n) {
            throw new IllegalArgumentException("y " + y.shapeString() + " has rows of " + y.dim(y.rank() - 1)
                    + " but w " + w.shapeString() + " gives n = " + n);
        }
        long m = k == 0 ? 0 : x.elementCount() / k;
        if (y.elementCount() != m * n) {
            throw new IllegalArgumentException("x " + x.shapeString() + " has " + m + " rows but y " + y.shapeString()
                    + " has " + (n == 0 ? 0 : y.elementCount() / n));
        }
        if (k == 0) {
            throw new IllegalArgumentException("k must be positive, w is " + w.shapeString());
        }
        if (epilogue.needsBias) {
            if (bias == null) {
                throw new IllegalArgumentException("epilogue " + epilogue + " needs a bias [" + n + "]");
            }
            if (bias.elementCount() != n || bias.dtype() != y.dtype()) {
                throw new IllegalArgumentException("bias must be " + y.dtype() + " [" + n + "] (y's type), got "
                        + bias.dtype() + " " + bias.shapeString());
            }
        } else if (bias != null) {
            throw new IllegalArgumentException("a bias was given but the epilogue " + epilogue + " adds none");
        }
        for (DeviceTensor in : bias == null ? new DeviceTensor[]{x, w} : new DeviceTensor[]{x, w, bias}) {
            if (y.buffer().overlaps(in.buffer())) {
                throw new IllegalArgumentException("y overlaps an input of the gemm; it cannot write in place");
            }
        }
        if (m > Integer.MAX_VALUE || n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("gemm dimensions must fit in 32 bits, got m = " + m + ", n = " + n);
        }
        return new long[]{m, n, k};
    }

    /** The largest power of two up to 256 that divides the address, for the heuristic's alignment preferences. */
    static int alignment(DeviceTensor t) {
        long address = t.buffer().address();
        return address == 0 ? 256 : (int) Math.min(256, Long.lowestOneBit(address));
    }

    private Plan plan(Key key, DeviceTensor bias) {
        int outType = key.out == DType.F32 ? CublasLt.CUDA_R_32F : CublasLt.CUDA_R_16BF;
        MemorySegment desc = lib.matmulDescCreate(CublasLt.COMPUTE_32F, CublasLt.CUDA_R_32F);
        MemorySegment wLayout = null, xLayout = null, yLayout = null, preference = null;
        try {
            lib.matmulDescSetInt(desc, CublasLt.DESC_TRANSA, CublasLt.OP_T);
            lib.matmulDescSetInt(desc, CublasLt.DESC_TRANSB, CublasLt.OP_N);
            lib.matmulDescSetInt(desc, CublasLt.DESC_EPILOGUE, key.epilogue.code);
            if (key.epilogue.needsBias) {
                lib.matmulDescSetLong(desc, CublasLt.DESC_BIAS_POINTER, bias.buffer().address());
            }
            // Column-major views: W is k×n (ld k), used transposed; X is k×m (ld k); Y is n×m (ld n).
            wLayout = lib.matrixLayoutCreate(CublasLt.CUDA_R_16BF, key.k, key.n, key.k);
            xLayout = lib.matrixLayoutCreate(CublasLt.CUDA_R_16BF, key.k, key.m, key.k);
            yLayout = lib.matrixLayoutCreate(outType, key.n, key.m, key.n);
            preference = lib.preferenceCreate();
            lib.preferenceSetLong(preference, CublasLt.PREF_MAX_WORKSPACE_BYTES, WORKSPACE_BYTES);
            lib.preferenceSetInt(preference, CublasLt.PREF_MIN_ALIGNMENT_A_BYTES, key.alignW);
            lib.preferenceSetInt(preference, CublasLt.PREF_MIN_ALIGNMENT_B_BYTES, key.alignX);
            lib.preferenceSetInt(preference, CublasLt.PREF_MIN_ALIGNMENT_C_BYTES, key.alignY);
            lib.preferenceSetInt(preference, CublasLt.PREF_MIN_ALIGNMENT_D_BYTES, key.alignY);
            MemorySegment results = arena.allocate(CublasLt.HEURISTIC_RESULT_BYTES * HEURISTIC_CANDIDATES, 8);
            int found = lib.algoGetHeuristic(handle, desc, wLayout, xLayout, yLayout, yLayout, preference,
                    HEURISTIC_CANDIDATES, results);
            List<Candidate> candidates = new ArrayList<>();
            for (int i = 0; i < found; i++) {
                MemorySegment result = results.asSlice(i * CublasLt.HEURISTIC_RESULT_BYTES, CublasLt.HEURISTIC_RESULT_BYTES);
                if (result.get(JAVA_INT, CublasLt.HEURISTIC_STATE_OFFSET) == CublasLt.STATUS_SUCCESS) {
                    MemorySegment algo = arena.allocate(CublasLt.ALGO_BYTES, 8);
                    algo.copyFrom(result.asSlice(0, CublasLt.ALGO_BYTES));
                    long ws = result.get(JAVA_LONG, CublasLt.HEURISTIC_WORKSPACE_OFFSET);
                    candidates.add(new Candidate(algo, Math.min(ws, WORKSPACE_BYTES)));
                }
            }
            if (!candidates.isEmpty()) {
                boolean tune = key.m * key.n * key.k >= TUNE_MIN_MACS;
                return new Plan(desc, wLayout, xLayout, yLayout, preference,
                        tune ? candidates : List.of(candidates.getFirst()));
            }
            throw new IllegalStateException("cuBLASLt offers no algorithm for Y[" + key.m + ", " + key.n + "] "
                    + (key.accumulate ? "+" : "") + "= X[" + key.m + ", " + key.k + "]·W[" + key.n + ", " + key.k
                    + "]ᵀ with epilogue " + key.epilogue + ", BF16 in, " + key.out + " out (operand alignments "
                    + key.alignX + "/" + key.alignW + "/" + key.alignY + " bytes)");
        } catch (RuntimeException e) {
            destroyQuietly(desc, wLayout, xLayout, yLayout, preference, e);
            throw e;
        }
    }

    private void destroyQuietly(MemorySegment desc, MemorySegment wLayout, MemorySegment xLayout,
                                MemorySegment yLayout, MemorySegment preference, RuntimeException into) {
        try {
            release(new Plan(desc, wLayout, xLayout, yLayout, preference, List.of()));
        } catch (RuntimeException e) {
            into.addSuppressed(e);
        }
    }

    private void release(Plan p) {
        if (p.preference != null) {
            lib.preferenceDestroy(p.preference);
        }
        for (MemorySegment layout : new MemorySegment[]{p.yLayout, p.xLayout, p.wLayout}) {
            if (layout != null) {
                lib.matrixLayoutDestroy(layout);
            }
        }
        if (p.desc != null) {
            lib.matmulDescDestroy(p.desc);
        }
    }

    /** Shapes planned so far (each with its algorithm). */
    public synchronized int plannedShapes() {
        return plans.size();
    }

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("this Gemm was closed");
        }
    }

    /** Waits for the device, frees the workspace, destroys the descriptors and the handle. */
    @Override
    public synchronized void close() {
        if (!open) {
            return;
        }
        open = false;
        RuntimeException failure = null;
        try {
            scope.close();
        } catch (RuntimeException e) {
            failure = e;
        }
        try {
            context.makeCurrent();
            for (Plan p : plans.values()) {
                release(p);
            }
            plans.clear();
            lib.destroy(handle);
        } catch (RuntimeException e) {
            if (failure == null) {
                failure = e;
            } else {
                failure.addSuppressed(e);
            }
        }
        arena.close();
        if (failure != null) {
            throw failure;
        }
    }
}
