package tileattn.cuda;

import static java.lang.foreign.MemoryLayout.paddingLayout;
import static java.lang.foreign.MemoryLayout.structLayout;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;

/**
 * A kernel entry point of a loaded {@link CudaModule}. {@link #launch} queues it on a stream; dynamic shared
 * memory above the default 48 KB is unlocked on demand (cuFuncSetAttribute), up to the device's opt-in limit.
 * {@link #launchCluster} launches thread-block clusters (Hopper) through cuLaunchKernelEx.
 */
public final class CudaFunction {

    static final int DEFAULT_DYNAMIC_SHARED_LIMIT = 48 * 1024;

    // CUfunction_attribute values (cuda.h 13.0).
    static final int FUNC_ATTR_MAX_THREADS_PER_BLOCK = 0;
    static final int FUNC_ATTR_SHARED_SIZE_BYTES = 1;
    static final int FUNC_ATTR_LOCAL_SIZE_BYTES = 3;
    static final int FUNC_ATTR_NUM_REGS = 4;
    static final int FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    static final int LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4;

    /** CUlaunchConfig; sizes and offsets checked against gcc's sizeof/offsetof on cuda.h 13.0 (56 bytes). */
    static final StructLayout LAUNCH_CONFIG = structLayout(
            JAVA_INT.withName("gridDimX"), JAVA_INT.withName("gridDimY"), JAVA_INT.withName("gridDimZ"),
            JAVA_INT.withName("blockDimX"), JAVA_INT.withName("blockDimY"), JAVA_INT.withName("blockDimZ"),
            JAVA_INT.withName("sharedMemBytes"), paddingLayout(4),
            ADDRESS.withName("hStream"),
            ADDRESS.withName("attrs"),
            JAVA_INT.withName("numAttrs"), paddingLayout(4));

    /** CUlaunchAttribute: id, 4 bytes padding, a 64-byte value union; the cluster dims are its first three ints (72 bytes). */
    static final StructLayout LAUNCH_ATTRIBUTE = structLayout(
            JAVA_INT.withName("id"), paddingLayout(4),
            structLayout(JAVA_INT.withName("x"), JAVA_INT.withName("y"), JAVA_INT.withName("z"), paddingLayout(52))
                    .withByteAlignment(8).withName("value"));

    private final CudaModule module;
    private final MemorySegment handle;
    private final String name;
    private int dynamicSharedLimit = DEFAULT_DYNAMIC_SHARED_LIMIT;

    CudaFunction(CudaModule module, MemorySegment handle, String name) {
        this.module = module;
        this.handle = handle;
        this.name = name;
    }

    public String name() {
        return name;
    }

    public CudaModule module() {
        return module;
    }

    /** Registers per thread, as compiled for this device. */
    public int registers() {
        return attribute(FUNC_ATTR_NUM_REGS);
    }

    /** Local memory (stack, spills) per thread in bytes. */
    public int localBytes() {
        return attribute(FUNC_ATTR_LOCAL_SIZE_BYTES);
    }

    public int staticSharedBytes() {
        return attribute(FUNC_ATTR_SHARED_SIZE_BYTES);
    }

    public int maxThreadsPerBlock() {
        return attribute(FUNC_ATTR_MAX_THREADS_PER_BLOCK);
    }

    /** Any CUfunction_attribute (see cuda.h). */
    public int attribute(int cuFunctionAttribute) {
        module.checkLoaded();
        CudaContext context = module.context();
        context.makeCurrent();
        return context.driver().funcGetAttribute(handle, cuFunctionAttribute, name);
    }

    /** Raises the function's dynamic shared memory limit when a launch asks for more than it allows. */
    private synchronized void reserveDynamicShared(int bytes) {
        if (bytes <= dynamicSharedLimit) {
            return;
        }
        CudaDevice device = module.context().device();
        int staticBytes = staticSharedBytes();
        if ((long) bytes + staticBytes > device.maxSharedMemoryPerBlockOptin()) {
            throw new IllegalArgumentException(name + " asks for " + bytes + " bytes of dynamic shared memory (+"
                    + staticBytes + " static) but " + device.name() + " allows at most "
                    + device.maxSharedMemoryPerBlockOptin() + " per block");
        }
        module.context().driver().funcSetAttribute(handle, FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes,
                name + ", max dynamic shared memory " + bytes);
        dynamicSharedLimit = bytes;
    }

    private void prepare(CudaStream stream, int dynamicSharedBytes) {
        module.checkLoaded();
        if (dynamicSharedBytes < 0) {
            throw new IllegalArgumentException("dynamic shared memory must be >= 0, got " + dynamicSharedBytes);
        }
        if (!stream.context().sameContextAs(module.context())) {
            throw new IllegalArgumentException("stream and kernel " + name + " belong to different CUDA contexts");
        }
        module.context().makeCurrent();
        reserveDynamicShared(dynamicSharedBytes);
    }

    /** Queues the kernel on {@code stream}. Launch-configuration errors throw here; faults show at the next sync. */
    public void launch(Dim3 grid, Dim3 block, int dynamicSharedBytes, CudaStream stream, KernelArgs args) {
        prepare(stream, dynamicSharedBytes);
        try (Arena arena = Arena.ofConfined()) {
            module.context().driver().launchKernel(handle, name, grid, block, dynamicSharedBytes, stream.handle(),
                    args.pack(arena));
        }
    }

    /**
     * Queues the kernel as clusters of {@code cluster} blocks (grid must be divisible by it; compute capability
     * 9.0 or newer). Portable cluster sizes are up to 8 blocks.
     */
    public void launchCluster(Dim3 grid, Dim3 block, Dim3 cluster, int dynamicSharedBytes, CudaStream stream,
                              KernelArgs args) {
        if (grid.x() % cluster.x() != 0 || grid.y() % cluster.y() != 0 || grid.z() % cluster.z() != 0) {
            throw new IllegalArgumentException("grid " + grid + " is not a multiple of the cluster " + cluster);
        }
        CudaDevice device = module.context().device();
        if (!device.clusterLaunch()) {
            throw new UnsupportedOperationException(device.name() + " (compute capability "
                    + device.computeCapability() + ") cannot launch thread-block clusters");
        }
        prepare(stream, dynamicSharedBytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment attribute = arena.allocate(LAUNCH_ATTRIBUTE);
            attribute.set(JAVA_INT, offset(LAUNCH_ATTRIBUTE, "id"), LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION);
            long value = offset(LAUNCH_ATTRIBUTE, "value");
            attribute.set(JAVA_INT, value, cluster.x());
            attribute.set(JAVA_INT, value + 4, cluster.y());
            attribute.set(JAVA_INT, value + 8, cluster.z());

            MemorySegment config = arena.allocate(LAUNCH_CONFIG);
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "gridDimX"), grid.x());
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "gridDimY"), grid.y());
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "gridDimZ"), grid.z());
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "blockDimX"), block.x());
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "blockDimY"), block.y());
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "blockDimZ"), block.z());
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "sharedMemBytes"), dynamicSharedBytes);
            config.set(ADDRESS, offset(LAUNCH_CONFIG, "hStream"), stream.handle());
            config.set(ADDRESS, offset(LAUNCH_CONFIG, "attrs"), attribute);
            config.set(JAVA_INT, offset(LAUNCH_CONFIG, "numAttrs"), 1);
            module.context().driver().launchKernelEx(config, handle, name, args.pack(arena));
        }
    }

    static long offset(MemoryLayout layout, String field) {
        return layout.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    @Override
    public String toString() {
        return "CudaFunction[" + name + " in " + module.name() + "]";
    }
}
