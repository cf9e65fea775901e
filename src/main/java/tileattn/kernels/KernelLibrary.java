package tileattn.kernels;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaException;
import tileattn.cuda.CudaFunction;
import tileattn.cuda.CudaModule;

/**
 * The kernel families built into the jar (src/main/cuda/NAME.cu → resource tileattn/kernels/NAME.fatbin), loaded
 * into a context once and on first use. There is one library per {@link CudaContext}; its modules are unloaded
 * when the context closes.
 */
public final class KernelLibrary implements AutoCloseable {

    static final String RESOURCE_DIR = "/tileattn/kernels/";

    private final CudaContext context;
    private final Map<String, CudaModule> modules = new LinkedHashMap<>();

    private KernelLibrary(CudaContext context) {
        this.context = context;
    }

    /** The context's library, made on first use. */
    public static KernelLibrary of(CudaContext context) {
        return context.attachment(KernelLibrary.class, () -> new KernelLibrary(context));
    }

    public CudaContext context() {
        return context;
    }

    /** Kernel families this jar carries (empty when it was built without nvcc). */
    public static List<String> familiesInJar() {
        try (InputStream in = KernelLibrary.class.getResourceAsStream(RESOURCE_DIR + "families.txt")) {
            if (in == null) {
                return List.of();
            }
            return new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)).lines()
                    .map(String::strip).filter(s -> !s.isEmpty())
                    .filter(s -> KernelLibrary.class.getResource(RESOURCE_DIR + s + ".fatbin") != null)
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The loaded module of a family, e.g. "layout". */
    public synchronized CudaModule module(String family) {
        CudaModule module = modules.get(family);
        if (module != null) {
            return module;
        }
        String resource = RESOURCE_DIR + family + ".fatbin";
        byte[] image;
        try (InputStream in = KernelLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new KernelUnavailableException("kernel family '" + family + "' is not in this jar (no resource "
                        + resource + "): it was built without nvcc, so only the CPU path is available");
            }
            image = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + resource, e);
        }
        try {
            module = CudaModule.load(context, image, family + ".fatbin");
        } catch (CudaException e) {
            throw new KernelUnavailableException("kernel family '" + family + "' does not load on "
                    + context.device().name() + " (compute capability " + context.device().computeCapability()
                    + "; the jar carries sm_90a, sm_80 and compute_80 PTX): " + e.getMessage(), e);
        }
        modules.put(family, module);
        return module;
    }

    /** An entry point of a family, e.g. {@code function("convert", "tileattn_convert_f32_to_bf16")}. */
    public CudaFunction function(String family, String entryPoint) {
        return module(family).function(entryPoint);
    }

    @Override
    public synchronized void close() {
        RuntimeException failure = null;
        for (CudaModule module : modules.values()) {
            try {
                module.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        modules.clear();
        if (failure != null) {
            throw failure;
        }
    }
}
