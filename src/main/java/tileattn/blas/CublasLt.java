package tileattn.blas;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * Hand-written downcalls into libcublasLt (cuBLAS 12 or 13). Enum values and struct sizes are those of NVIDIA's
 * cublasLt.h (checked against the CUDA 12.6 header; cuBLAS keeps them across major versions): every function
 * returns a cublasStatus_t, which the wrappers check. Device pointers and size_t are 64-bit (LP64 Linux); handles
 * and descriptors are pointers. Nothing is marked critical: cublasLtMatmul can block while it queues work.
 */
final class CublasLt {

    static final int STATUS_SUCCESS = 0;

    // cudaDataType_t (library_types.h)
    static final int CUDA_R_32F = 0;
    static final int CUDA_R_16F = 2;
    static final int CUDA_R_16BF = 14;
    // cublasComputeType_t
    static final int COMPUTE_32F = 68;
    // cublasOperation_t
    static final int OP_N = 0;
    static final int OP_T = 1;
    // cublasLtMatmulDescAttributes_t
    static final int DESC_TRANSA = 3;
    static final int DESC_TRANSB = 4;
    static final int DESC_EPILOGUE = 7;
    static final int DESC_BIAS_POINTER = 8;
    // cublasLtEpilogue_t
    static final int EPILOGUE_DEFAULT = 1;
    static final int EPILOGUE_BIAS = 4;
    static final int EPILOGUE_GELU = 32;
    static final int EPILOGUE_GELU_BIAS = 36;
    // cublasLtMatmulPreferenceAttributes_t
    static final int PREF_MAX_WORKSPACE_BYTES = 1;
    static final int PREF_MIN_ALIGNMENT_A_BYTES = 5;
    static final int PREF_MIN_ALIGNMENT_B_BYTES = 6;
    static final int PREF_MIN_ALIGNMENT_C_BYTES = 7;
    static final int PREF_MIN_ALIGNMENT_D_BYTES = 8;

    /** sizeof(cublasLtMatmulAlgo_t): uint64_t data[8]. */
    static final long ALGO_BYTES = 64;
    /**
     * sizeof(cublasLtMatmulHeuristicResult_t): algo (64), size_t workspaceSize at 64, cublasStatus_t state at 72,
     * float wavesCount at 76, int reserved[4] at 80.
     */
    static final long HEURISTIC_RESULT_BYTES = 96;
    static final long HEURISTIC_WORKSPACE_OFFSET = 64;
    static final long HEURISTIC_STATE_OFFSET = 72;

    private final Path file;
    private final SymbolLookup lib;
    private final Linker linker = Linker.nativeLinker();

    private final MethodHandle getStatusName;
    private final MethodHandle getVersion;
    private final MethodHandle create;
    private final MethodHandle destroy;
    private final MethodHandle matmulDescCreate;
    private final MethodHandle matmulDescDestroy;
    private final MethodHandle matmulDescSetAttribute;
    private final MethodHandle matrixLayoutCreate;
    private final MethodHandle matrixLayoutDestroy;
    private final MethodHandle preferenceCreate;
    private final MethodHandle preferenceDestroy;
    private final MethodHandle preferenceSetAttribute;
    private final MethodHandle algoGetHeuristic;
    private final MethodHandle matmul;

    private CublasLt(Path file, SymbolLookup lib) {
        this.file = file;
        this.lib = lib;
        getStatusName = bind("cublasLtGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getVersion = bind("cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
        create = status("cublasLtCreate", ADDRESS);
        destroy = status("cublasLtDestroy", ADDRESS);
        matmulDescCreate = status("cublasLtMatmulDescCreate", ADDRESS, JAVA_INT, JAVA_INT);
        matmulDescDestroy = status("cublasLtMatmulDescDestroy", ADDRESS);
        matmulDescSetAttribute = status("cublasLtMatmulDescSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
        matrixLayoutCreate = status("cublasLtMatrixLayoutCreate", ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG);
        matrixLayoutDestroy = status("cublasLtMatrixLayoutDestroy", ADDRESS);
        preferenceCreate = status("cublasLtMatmulPreferenceCreate", ADDRESS);
        preferenceDestroy = status("cublasLtMatmulPreferenceDestroy", ADDRESS);
        preferenceSetAttribute = status("cublasLtMatmulPreferenceSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
        algoGetHeuristic = status("cublasLtMatmulAlgoGetHeuristic", ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        // handle, desc, alpha*, A, Adesc, B, Bdesc, beta*, C, Cdesc, D, Ddesc, algo*, workspace, workspaceSize, stream
        matmul = status("cublasLtMatmul", ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS,
                JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
    }

    private static CublasLt instance;

    /**
     * The library, loaded once.
     *
     * @throws CublasLtUnavailableException naming what was looked for when no usable libcublasLt is found
     */
    static synchronized CublasLt load() {
        if (instance == null) {
            String property = System.getProperty(CublasLtLibrary.PROPERTY);
            Path file = CublasLtLibrary.find(property, System.getenv()).orElseThrow(() ->
                    new CublasLtUnavailableException(CublasLtLibrary.notFoundMessage(property, System.getenv())));
            instance = load(file);
        }
        return instance;
    }

    /** Opens one file and binds every function; the exception names the file and the missing symbol. */
    static CublasLt load(Path file) {
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(file, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new CublasLtUnavailableException("cannot load " + file + " as a shared library: " + e.getMessage(), e);
        } catch (IllegalCallerException e) {
            throw new CublasLtUnavailableException("native access is disabled (" + e.getMessage()
                    + "); run with --enable-native-access=ALL-UNNAMED", e);
        }
        return new CublasLt(file, lookup);
    }

    Path file() {
        return file;
    }

    private MethodHandle bind(String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = lib.find(name).orElseThrow(() -> new CublasLtUnavailableException(file
                + " has no function " + name + "; tileattn needs cuBLASLt 12 or newer"));
        return linker.downcallHandle(symbol, descriptor);
    }

    private MethodHandle status(String name, java.lang.foreign.MemoryLayout... args) {
        return bind(name, FunctionDescriptor.of(JAVA_INT, args));
    }

    /** cuBLASLt's version number, e.g. 130100 for 13.1.0. */
    long version() {
        try {
            return (long) getVersion.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    String statusName(int status) {
        try {
            MemorySegment name = (MemorySegment) getStatusName.invokeExact(status);
            return name.equals(MemorySegment.NULL) ? "status " + status : name.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void check(String call, int status) {
        if (status != STATUS_SUCCESS) {
            throw new CublasLtException(call, status, statusName(status));
        }
    }

    MemorySegment create() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cublasLtCreate", (int) create.invokeExact(out));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void destroy(MemorySegment handle) {
        try {
            check("cublasLtDestroy", (int) destroy.invokeExact(handle));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment matmulDescCreate(int computeType, int scaleType) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cublasLtMatmulDescCreate", (int) matmulDescCreate.invokeExact(out, computeType, scaleType));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void matmulDescDestroy(MemorySegment desc) {
        try {
            check("cublasLtMatmulDescDestroy", (int) matmulDescDestroy.invokeExact(desc));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void matmulDescSetInt(MemorySegment desc, int attribute, int value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocateFrom(JAVA_INT, value);
            check("cublasLtMatmulDescSetAttribute(" + attribute + ")",
                    (int) matmulDescSetAttribute.invokeExact(desc, attribute, buf, 4L));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void matmulDescSetLong(MemorySegment desc, int attribute, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocateFrom(JAVA_LONG, value);
            check("cublasLtMatmulDescSetAttribute(" + attribute + ")",
                    (int) matmulDescSetAttribute.invokeExact(desc, attribute, buf, 8L));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A column-major layout of {@code rows × cols} elements with leading dimension {@code ld}. */
    MemorySegment matrixLayoutCreate(int type, long rows, long cols, long ld) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cublasLtMatrixLayoutCreate(" + rows + "x" + cols + ", ld " + ld + ")",
                    (int) matrixLayoutCreate.invokeExact(out, type, rows, cols, ld));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void matrixLayoutDestroy(MemorySegment layout) {
        try {
            check("cublasLtMatrixLayoutDestroy", (int) matrixLayoutDestroy.invokeExact(layout));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment preferenceCreate() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cublasLtMatmulPreferenceCreate", (int) preferenceCreate.invokeExact(out));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void preferenceDestroy(MemorySegment preference) {
        try {
            check("cublasLtMatmulPreferenceDestroy", (int) preferenceDestroy.invokeExact(preference));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** uint64 attributes (the workspace size). */
    void preferenceSetLong(MemorySegment preference, int attribute, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocateFrom(JAVA_LONG, value);
            check("cublasLtMatmulPreferenceSetAttribute(" + attribute + ")",
                    (int) preferenceSetAttribute.invokeExact(preference, attribute, buf, 8L));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** uint32 attributes (the minimum alignments). */
    void preferenceSetInt(MemorySegment preference, int attribute, int value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocateFrom(JAVA_INT, value);
            check("cublasLtMatmulPreferenceSetAttribute(" + attribute + ")",
                    (int) preferenceSetAttribute.invokeExact(preference, attribute, buf, 4L));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Fills {@code results} (count × 96 bytes); returns how many were written. */
    int algoGetHeuristic(MemorySegment handle, MemorySegment desc, MemorySegment a, MemorySegment b, MemorySegment c,
                         MemorySegment d, MemorySegment preference, int count, MemorySegment results) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment returned = arena.allocate(JAVA_INT);
            check("cublasLtMatmulAlgoGetHeuristic", (int) algoGetHeuristic.invokeExact(handle, desc, a, b, c, d,
                    preference, count, results, returned));
            return returned.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void matmul(String what, MemorySegment handle, MemorySegment desc, MemorySegment alpha, long a, MemorySegment aDesc,
                long b, MemorySegment bDesc, MemorySegment beta, long c, MemorySegment cDesc, long d,
                MemorySegment dDesc, MemorySegment algo, long workspace, long workspaceBytes, MemorySegment stream) {
        try {
            check("cublasLtMatmul(" + what + ")", (int) matmul.invokeExact(handle, desc, alpha, a, aDesc, b, bDesc,
                    beta, c, cDesc, d, dDesc, algo, workspace, workspaceBytes, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }
}
