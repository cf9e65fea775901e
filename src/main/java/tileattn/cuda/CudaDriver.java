package tileattn.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;
import java.util.Optional;

/**
 * Hand-written downcalls into the CUDA driver API of libcuda.so.1. Every function returns a CUresult; the
 * wrappers here check it and throw {@link CudaException}. Where cuda.h maps a name to a versioned symbol
 * ({@code #define cuMemAlloc cuMemAlloc_v2}) the versioned symbol is bound, because the unversioned export keeps
 * the old 32-bit ABI. Nothing here is marked {@code Linker.Option.critical}: most of these calls can block.
 * CUdeviceptr and size_t are 64-bit (LP64 Linux); CUcontext, CUstream, ... are pointers.
 */
final class CudaDriver {

    static final String LIBRARY = "libcuda.so.1";

    static final int CUDA_SUCCESS = 0;
    static final int CUDA_ERROR_OUT_OF_MEMORY = 2;
    static final int CUDA_ERROR_NO_DEVICE = 100;

    private final SymbolLookup lib;
    private final Linker linker = Linker.nativeLinker();

    private final MethodHandle cuGetErrorName;
    private final MethodHandle cuGetErrorString;
    private final MethodHandle cuInit;
    private final MethodHandle cuDriverGetVersion;
    private final MethodHandle cuDeviceGetCount;
    private final MethodHandle cuDeviceGet;
    private final MethodHandle cuDeviceGetName;
    private final MethodHandle cuDeviceGetAttribute;
    private final MethodHandle cuDeviceTotalMem;
    private final MethodHandle cuDevicePrimaryCtxRetain;
    private final MethodHandle cuDevicePrimaryCtxRelease;
    private final MethodHandle cuCtxSetCurrent;
    private final MethodHandle cuCtxGetCurrent;
    private final MethodHandle cuCtxSynchronize;
    private final MethodHandle cuMemGetInfo;
    private final MethodHandle cuMemAlloc;
    private final MethodHandle cuMemFree;
    private final MethodHandle cuMemsetD8;
    private final MethodHandle cuMemsetD32;
    private final MethodHandle cuMemsetD8Async;
    private final MethodHandle cuMemsetD32Async;
    private final MethodHandle cuMemHostAlloc;
    private final MethodHandle cuMemFreeHost;
    private final MethodHandle cuMemcpyHtoD;
    private final MethodHandle cuMemcpyDtoH;
    private final MethodHandle cuMemcpyDtoD;
    private final MethodHandle cuMemcpyHtoDAsync;
    private final MethodHandle cuMemcpyDtoHAsync;
    private final MethodHandle cuMemcpyDtoDAsync;
    private final MethodHandle cuStreamCreate;
    private final MethodHandle cuStreamDestroy;
    private final MethodHandle cuStreamSynchronize;
    private final MethodHandle cuStreamWaitEvent;
    private final MethodHandle cuEventCreate;
    private final MethodHandle cuEventDestroy;
    private final MethodHandle cuEventRecord;
    private final MethodHandle cuEventSynchronize;
    private final MethodHandle cuEventElapsedTime;
    private final String cuEventElapsedTimeName;
    private final MethodHandle cuModuleLoadData;
    private final MethodHandle cuModuleUnload;
    private final MethodHandle cuModuleGetFunction;
    private final MethodHandle cuFuncSetAttribute;
    private final MethodHandle cuFuncGetAttribute;
    private final MethodHandle cuLaunchKernel;
    /** Absent before CUDA 12 drivers; cluster launches then report that. */
    private final Optional<MethodHandle> cuLaunchKernelEx;
    /** Absent before CUDA 12 drivers; {@link TensorMap} then reports that. */
    private final Optional<MethodHandle> cuTensorMapEncodeTiled;

    private CudaDriver(SymbolLookup lib) {
        this.lib = lib;
        cuGetErrorName = bind("cuGetErrorName", JAVA_INT, ADDRESS);
        cuGetErrorString = bind("cuGetErrorString", JAVA_INT, ADDRESS);
        cuInit = bind("cuInit", JAVA_INT);
        cuDriverGetVersion = bind("cuDriverGetVersion", ADDRESS);
        cuDeviceGetCount = bind("cuDeviceGetCount", ADDRESS);
        cuDeviceGet = bind("cuDeviceGet", ADDRESS, JAVA_INT);
        cuDeviceGetName = bind("cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
        cuDeviceGetAttribute = bind("cuDeviceGetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        cuDeviceTotalMem = bind("cuDeviceTotalMem_v2", ADDRESS, JAVA_INT);
        cuDevicePrimaryCtxRetain = bind("cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
        cuDevicePrimaryCtxRelease = bind("cuDevicePrimaryCtxRelease_v2", JAVA_INT);
        cuCtxSetCurrent = bind("cuCtxSetCurrent", ADDRESS);
        cuCtxGetCurrent = bind("cuCtxGetCurrent", ADDRESS);
        cuCtxSynchronize = bind("cuCtxSynchronize");
        cuMemGetInfo = bind("cuMemGetInfo_v2", ADDRESS, ADDRESS);
        cuMemAlloc = bind("cuMemAlloc_v2", ADDRESS, JAVA_LONG);
        cuMemFree = bind("cuMemFree_v2", JAVA_LONG);
        cuMemsetD8 = bind("cuMemsetD8_v2", JAVA_LONG, JAVA_BYTE, JAVA_LONG);
        cuMemsetD32 = bind("cuMemsetD32_v2", JAVA_LONG, JAVA_INT, JAVA_LONG);
        cuMemsetD8Async = bind("cuMemsetD8Async", JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS);
        cuMemsetD32Async = bind("cuMemsetD32Async", JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS);
        cuMemHostAlloc = bind("cuMemHostAlloc", ADDRESS, JAVA_LONG, JAVA_INT);
        cuMemFreeHost = bind("cuMemFreeHost", ADDRESS);
        cuMemcpyHtoD = bind("cuMemcpyHtoD_v2", JAVA_LONG, ADDRESS, JAVA_LONG);
        cuMemcpyDtoH = bind("cuMemcpyDtoH_v2", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuMemcpyDtoD = bind("cuMemcpyDtoD_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG);
        cuMemcpyHtoDAsync = bind("cuMemcpyHtoDAsync_v2", JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS);
        cuMemcpyDtoHAsync = bind("cuMemcpyDtoHAsync_v2", ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
        cuMemcpyDtoDAsync = bind("cuMemcpyDtoDAsync_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS);
        cuStreamCreate = bind("cuStreamCreate", ADDRESS, JAVA_INT);
        cuStreamDestroy = bind("cuStreamDestroy_v2", ADDRESS);
        cuStreamSynchronize = bind("cuStreamSynchronize", ADDRESS);
        cuStreamWaitEvent = bind("cuStreamWaitEvent", ADDRESS, ADDRESS, JAVA_INT);
        cuEventCreate = bind("cuEventCreate", ADDRESS, JAVA_INT);
        cuEventDestroy = bind("cuEventDestroy_v2", ADDRESS);
        cuEventRecord = bind("cuEventRecord", ADDRESS, ADDRESS);
        cuEventSynchronize = bind("cuEventSynchronize", ADDRESS);
        // cuda.h 13 maps cuEventElapsedTime to _v2; drivers older than 12.8 only have the original.
        cuEventElapsedTimeName = lib.find("cuEventElapsedTime_v2").isPresent() ? "cuEventElapsedTime_v2" : "cuEventElapsedTime";
        cuEventElapsedTime = bind(cuEventElapsedTimeName, ADDRESS, ADDRESS, ADDRESS);
        cuModuleLoadData = bind("cuModuleLoadData", ADDRESS, ADDRESS);
        cuModuleUnload = bind("cuModuleUnload", ADDRESS);
        cuModuleGetFunction = bind("cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
        cuFuncSetAttribute = bind("cuFuncSetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        cuFuncGetAttribute = bind("cuFuncGetAttribute", ADDRESS, JAVA_INT, ADDRESS);
        cuLaunchKernel = bind("cuLaunchKernel", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
        cuLaunchKernelEx = lib.find("cuLaunchKernelEx").map(symbol -> linker.downcallHandle(symbol,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS)));
        cuTensorMapEncodeTiled = lib.find("cuTensorMapEncodeTiled").map(symbol -> linker.downcallHandle(symbol,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS,
                        ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT)));
    }

    /**
     * Opens libcuda.so.1 and binds every function.
     *
     * @throws IllegalArgumentException when the library cannot be loaded
     * @throws java.util.NoSuchElementException when a required symbol is missing (a driver too old)
     */
    static CudaDriver load() {
        return new CudaDriver(SymbolLookup.libraryLookup(LIBRARY, Arena.global()));
    }

    private MethodHandle bind(String name, MemoryLayout... args) {
        return linker.downcallHandle(lib.findOrThrow(name), FunctionDescriptor.of(JAVA_INT, args));
    }

    // ---- errors ----

    void check(String call, int result) {
        if (result != CUDA_SUCCESS) {
            throw new CudaException(call, result, errorName(result), errorString(result));
        }
    }

    String errorName(int result) {
        return errorText(cuGetErrorName, result, "CUDA error " + result);
    }

    String errorString(int result) {
        return errorText(cuGetErrorString, result, "unknown CUDA error");
    }

    private static String errorText(MethodHandle fn, int result, String fallback) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = (int) fn.invokeExact(result, out);
            MemorySegment text = out.get(ADDRESS, 0);
            if (rc != CUDA_SUCCESS || text.equals(MemorySegment.NULL)) {
                return fallback;
            }
            return text.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return fallback;
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("native call failed", t);
    }

    // ---- initialisation and devices ----

    /** The raw CUresult of cuInit, so that "no device" can be reported without an exception. */
    int init() {
        try {
            return (int) cuInit.invokeExact(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int driverVersion() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check("cuDriverGetVersion", (int) cuDriverGetVersion.invokeExact(out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check("cuDeviceGetCount", (int) cuDeviceGetCount.invokeExact(out));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int device(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check("cuDeviceGet", (int) cuDeviceGet.invokeExact(out, ordinal));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    String deviceName(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(256);
            check("cuDeviceGetName", (int) cuDeviceGetName.invokeExact(out, 256, device));
            return out.getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int deviceAttribute(int device, int attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check("cuDeviceGetAttribute", (int) cuDeviceGetAttribute.invokeExact(out, attribute, device));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    long deviceTotalMemory(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check("cuDeviceTotalMem_v2", (int) cuDeviceTotalMem.invokeExact(out, device));
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- contexts ----

    MemorySegment primaryContextRetain(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cuDevicePrimaryCtxRetain", (int) cuDevicePrimaryCtxRetain.invokeExact(out, device));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void primaryContextRelease(int device) {
        try {
            check("cuDevicePrimaryCtxRelease_v2", (int) cuDevicePrimaryCtxRelease.invokeExact(device));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment currentContext() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cuCtxGetCurrent", (int) cuCtxGetCurrent.invokeExact(out));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void setCurrentContext(MemorySegment context) {
        try {
            check("cuCtxSetCurrent", (int) cuCtxSetCurrent.invokeExact(context));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void contextSynchronize() {
        try {
            check("cuCtxSynchronize", (int) cuCtxSynchronize.invokeExact());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- memory ----

    /** {free, total} bytes of the current context's device. */
    long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            check("cuMemGetInfo_v2", (int) cuMemGetInfo.invokeExact(free, total));
            return new long[]{free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The raw CUresult and, on success, the device pointer in {@code out[0]}; out of memory is the caller's to report. */
    int memAlloc(long bytes, long[] out) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ptr = arena.allocate(JAVA_LONG);
            int rc = (int) cuMemAlloc.invokeExact(ptr, bytes);
            out[0] = ptr.get(JAVA_LONG, 0);
            return rc;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memFree(long devicePointer) {
        try {
            check("cuMemFree_v2", (int) cuMemFree.invokeExact(devicePointer));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memsetD8(long devicePointer, byte value, long count) {
        try {
            check("cuMemsetD8_v2", (int) cuMemsetD8.invokeExact(devicePointer, value, count));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memsetD32(long devicePointer, int value, long count) {
        try {
            check("cuMemsetD32_v2", (int) cuMemsetD32.invokeExact(devicePointer, value, count));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memsetD8Async(long devicePointer, byte value, long count, MemorySegment stream) {
        try {
            check("cuMemsetD8Async", (int) cuMemsetD8Async.invokeExact(devicePointer, value, count, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memsetD32Async(long devicePointer, int value, long count, MemorySegment stream) {
        try {
            check("cuMemsetD32Async", (int) cuMemsetD32Async.invokeExact(devicePointer, value, count, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The raw CUresult and, on success, the host pointer in {@code out[0]}. */
    int memHostAlloc(long bytes, int flags, MemorySegment[] out) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ptr = arena.allocate(ADDRESS);
            int rc = (int) cuMemHostAlloc.invokeExact(ptr, bytes, flags);
            out[0] = ptr.get(ADDRESS, 0);
            return rc;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memFreeHost(MemorySegment hostPointer) {
        try {
            check("cuMemFreeHost", (int) cuMemFreeHost.invokeExact(hostPointer));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memcpyHtoD(long dst, MemorySegment src, long bytes) {
        try {
            check("cuMemcpyHtoD_v2", (int) cuMemcpyHtoD.invokeExact(dst, src, bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memcpyDtoH(MemorySegment dst, long src, long bytes) {
        try {
            check("cuMemcpyDtoH_v2", (int) cuMemcpyDtoH.invokeExact(dst, src, bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memcpyDtoD(long dst, long src, long bytes) {
        try {
            check("cuMemcpyDtoD_v2", (int) cuMemcpyDtoD.invokeExact(dst, src, bytes));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            check("cuMemcpyHtoDAsync_v2", (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            check("cuMemcpyDtoHAsync_v2", (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            check("cuMemcpyDtoDAsync_v2", (int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- streams and events ----

    MemorySegment streamCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cuStreamCreate", (int) cuStreamCreate.invokeExact(out, flags));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void streamDestroy(MemorySegment stream) {
        try {
            check("cuStreamDestroy_v2", (int) cuStreamDestroy.invokeExact(stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void streamSynchronize(MemorySegment stream) {
        try {
            check("cuStreamSynchronize", (int) cuStreamSynchronize.invokeExact(stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            check("cuStreamWaitEvent", (int) cuStreamWaitEvent.invokeExact(stream, event, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment eventCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cuEventCreate", (int) cuEventCreate.invokeExact(out, flags));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void eventDestroy(MemorySegment event) {
        try {
            check("cuEventDestroy_v2", (int) cuEventDestroy.invokeExact(event));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check("cuEventRecord", (int) cuEventRecord.invokeExact(event, stream));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void eventSynchronize(MemorySegment event) {
        try {
            check("cuEventSynchronize", (int) cuEventSynchronize.invokeExact(event));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            check(cuEventElapsedTimeName, (int) cuEventElapsedTime.invokeExact(out, start, end));
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- modules and launches ----

    MemorySegment moduleLoadData(MemorySegment image) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cuModuleLoadData", (int) cuModuleLoadData.invokeExact(out, image));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void moduleUnload(MemorySegment module) {
        try {
            check("cuModuleUnload", (int) cuModuleUnload.invokeExact(module));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check("cuModuleGetFunction(" + name + ")",
                    (int) cuModuleGetFunction.invokeExact(out, module, arena.allocateFrom(name)));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void funcSetAttribute(MemorySegment function, int attribute, int value, String what) {
        try {
            check("cuFuncSetAttribute(" + what + ")", (int) cuFuncSetAttribute.invokeExact(function, attribute, value));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int funcGetAttribute(MemorySegment function, int attribute, String what) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check("cuFuncGetAttribute(" + what + ")", (int) cuFuncGetAttribute.invokeExact(out, attribute, function));
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void launchKernel(MemorySegment function, String name, Dim3 grid, Dim3 block, int sharedBytes,
                      MemorySegment stream, MemorySegment params) {
        try {
            check("cuLaunchKernel(" + name + ")", (int) cuLaunchKernel.invokeExact(function,
                    grid.x(), grid.y(), grid.z(), block.x(), block.y(), block.z(), sharedBytes, stream, params,
                    MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    boolean hasLaunchKernelEx() {
        return cuLaunchKernelEx.isPresent();
    }

    void launchKernelEx(MemorySegment config, MemorySegment function, String name, MemorySegment params) {
        MethodHandle ex = cuLaunchKernelEx.orElseThrow(() -> new UnsupportedOperationException(
                "this CUDA driver has no cuLaunchKernelEx (cluster launches need a CUDA 12 or newer driver)"));
        try {
            check("cuLaunchKernelEx(" + name + ")", (int) ex.invokeExact(config, function, params, MemorySegment.NULL));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * cuTensorMapEncodeTiled into {@code map} (128 bytes, 64-byte aligned). dims and boxDims count elements,
     * innermost first; strides are the byte strides of dimensions 1 .. rank - 1.
     */
    void tensorMapEncodeTiled(MemorySegment map, int dataType, long address, long[] dims, long[] strides, int[] boxDims,
                              int swizzle, int l2Promotion) {
        MethodHandle encode = cuTensorMapEncodeTiled.orElseThrow(() -> new UnsupportedOperationException(
                "this CUDA driver has no cuTensorMapEncodeTiled (tensor maps need a CUDA 12 or newer driver)"));
        int rank = dims.length;
        int[] elementStrides = new int[rank];
        Arrays.fill(elementStrides, 1);
        try (Arena arena = Arena.ofConfined()) {
            check("cuTensorMapEncodeTiled", (int) encode.invokeExact(map, dataType, rank, address,
                    arena.allocateFrom(JAVA_LONG, dims), arena.allocateFrom(JAVA_LONG, strides),
                    arena.allocateFrom(JAVA_INT, boxDims), arena.allocateFrom(JAVA_INT, elementStrides),
                    0, swizzle, l2Promotion, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
