package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaException;
import tileattn.cuda.CudaFunction;
import tileattn.cuda.CudaModule;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.Dim3;
import tileattn.cuda.GpuTests;
import tileattn.cuda.KernelArgs;
import tileattn.tensor.FloatTensor;

@Tag("gpu")
class KernelLibraryGpuTest {

    private static final String F32_TO_BF16 = "tileattn_convert_f32_to_bf16";

    private static CudaContext context;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

    private static FloatTensor randomTensor(Random rnd, int n) {
        float[] data = new float[n];
        for (int i = 0; i < n; i++) {
            data[i] = (float) (rnd.nextGaussian() * 100);
        }
        return new FloatTensor(new int[]{n}, data);
    }

    /** Launches f32 -> bf16 by hand and checks every element against the host conversion. */
    private static void launchAndCheck(int dynamicShared, Dim3 cluster) {
        Random rnd = new Random(dynamicShared + 31L * cluster.x());
        int n = 8 * 256 * 4 + 5;
        FloatTensor host = randomTensor(rnd, n);
        CudaFunction fn = KernelLibrary.of(context).function("convert", F32_TO_BF16);
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor src = DeviceTensor.upload(scope, host, DType.F32);
            DeviceTensor dst = scope.allocateTensor(DType.BF16, n);
            dst.buffer().fill((byte) 0xFF);
            KernelArgs args = KernelArgs.of().pointer(src).pointer(dst).i64(n);
            if (cluster.volume() == 1) {
                fn.launch(Dim3.of(4), Dim3.of(256), dynamicShared, stream, args);
            } else {
                fn.launchCluster(Dim3.of(4), Dim3.of(256), cluster, dynamicShared, stream, args);
            }
            stream.synchronize();
            short[] bits = new short[n];
            dst.buffer().copyToHost(bits);
            for (int i = 0; i < n; i++) {
                assertEquals(DType.BF16.encodeHalf(host.data()[i]), bits[i], "element " + i);
            }
        }
    }

    @Test
    void jarCarriesTheFirstKernelFamilies() {
        assertTrue(KernelLibrary.familiesInJar().containsAll(java.util.List.of("layout", "convert")),
                KernelLibrary.familiesInJar().toString());
    }

    @Test
    void modulesAndFunctionsLoadOncePerContext() {
        KernelLibrary library = KernelLibrary.of(context);
        assertSame(library, KernelLibrary.of(context));
        CudaModule module = library.module("convert");
        assertSame(module, library.module("convert"));
        CudaFunction fn = library.function("convert", F32_TO_BF16);
        assertSame(fn, library.function("convert", F32_TO_BF16));
        assertTrue(fn.registers() > 0 && fn.registers() <= 255, "registers " + fn.registers());
        assertEquals(0, fn.localBytes(), "no spills or stack in the conversion kernel");
        assertThrows(KernelUnavailableException.class, () -> library.module("no_such_family"));
    }

    @Test
    void launchesWithParameters() {
        launchAndCheck(0, Dim3.of(1));
    }

    @Test
    void dynamicSharedMemoryAbove48KiBIsUnlockedOnDemand() {
        launchAndCheck(100 * 1024, Dim3.of(1));
        int tooMuch = context.device().maxSharedMemoryPerBlockOptin() + 1;
        assertThrows(IllegalArgumentException.class, () -> launchAndCheck(tooMuch, Dim3.of(1)));
    }

    @Test
    void launchesThreadBlockClusters() {
        assumeTrue(context.device().clusterLaunch(), "no cluster launch on " + context.device().name());
        launchAndCheck(0, Dim3.of(2));
        launchAndCheck(64 * 1024, Dim3.of(4));
        assertThrows(IllegalArgumentException.class, () -> launchAndCheck(0, Dim3.of(3)), "grid 4 is no multiple of 3");
    }

    @Test
    @Tag("cuda-error")
    void aBadLaunchConfigurationNamesTheKernel() {
        CudaFunction fn = KernelLibrary.of(context).function("convert", F32_TO_BF16);
        try (DeviceScope scope = context.openScope()) {
            DeviceTensor src = scope.allocateTensor(DType.F32, 16);
            DeviceTensor dst = scope.allocateTensor(DType.BF16, 16);
            CudaException e = assertThrows(CudaException.class, () -> fn.launch(Dim3.of(1), Dim3.of(2048), 0,
                    context.defaultStream(), KernelArgs.of().pointer(src).pointer(dst).i64(16)));
            assertEquals("cuLaunchKernel(" + F32_TO_BF16 + ")", e.call());
            assertEquals("CUDA_ERROR_INVALID_VALUE", e.errorName());
        }
        launchAndCheck(0, Dim3.of(1));
    }

    @Test
    void modulesDieWithTheirContext() {
        CudaModule module;
        try (CudaContext second = CudaContext.primary(context.device())) {
            module = KernelLibrary.of(second).module("layout");
            assertNotNull(module.function("tileattn_tile_order_u16"));
        }
        assertThrows(IllegalStateException.class, () -> module.function("tileattn_tile_order_u16"));
        launchAndCheck(0, Dim3.of(1));
    }
}
