package tileattn.blas;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Where libcublasLt lives. It is not part of the driver, so it is looked for, in this order: the file named by the
 * system property {@code tileattn.cublaslt} or the environment variable {@code TILEATTN_CUBLASLT}; the folders of
 * {@code LD_LIBRARY_PATH}; the CUDA toolkits under /usr/local (cuda, then cuda-X.Y newest first); the system
 * library folders; and the pip wheels that PyTorch installs (nvidia/cu13/lib, nvidia/cublas/lib under each
 * Python's site-packages or dist-packages). In each folder libcublasLt.so.13 is preferred to .12 and to the
 * unversioned name.
 */
public final class CublasLtLibrary {

    public static final String PROPERTY = "tileattn.cublaslt";
    public static final String ENVIRONMENT = "TILEATTN_CUBLASLT";
    static final List<String> NAMES = List.of("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so");

    private CublasLtLibrary() {
    }

    /** The first existing candidate, or empty. */
    public static Optional<Path> find() {
        return find(System.getProperty(PROPERTY), System.getenv());
    }

    static Optional<Path> find(String property, Map<String, String> env) {
        return candidates(property, env).stream().filter(Files::isRegularFile).findFirst();
    }

    /** Every file looked at, in order (the explicit one first when given). */
    static List<Path> candidates(String property, Map<String, String> env) {
        Set<Path> files = new LinkedHashSet<>();
        String explicit = property != null && !property.isBlank() ? property : env.get(ENVIRONMENT);
        if (explicit != null && !explicit.isBlank()) {
            files.add(Path.of(explicit.strip()));
        }
        for (Path dir : folders(env)) {
            for (String name : NAMES) {
                files.add(dir.resolve(name));
            }
        }
        return List.copyOf(files);
    }

    /** The folders searched, in order. */
    static List<Path> folders(Map<String, String> env) {
        List<Path> dirs = new ArrayList<>();
        String ld = env.get("LD_LIBRARY_PATH");
        if (ld != null) {
            for (String part : ld.split(":")) {
                if (!part.isBlank()) {
                    dirs.add(Path.of(part));
                }
            }
        }
        String cudaHome = env.get("CUDA_HOME");
        if (cudaHome != null && !cudaHome.isBlank()) {
            dirs.add(Path.of(cudaHome, "lib64"));
        }
        List<Path> toolkits = new ArrayList<>();
        toolkits.add(Path.of("/usr/local/cuda"));
        toolkits.addAll(children(Path.of("/usr/local"), "cuda-*").stream()
                .sorted(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed()).toList());
        for (Path toolkit : toolkits) {
            dirs.add(toolkit.resolve("lib64"));
            dirs.add(toolkit.resolve("targets/x86_64-linux/lib"));
            dirs.add(toolkit.resolve("targets/sbsa-linux/lib"));
        }
        dirs.add(Path.of("/usr/lib/x86_64-linux-gnu"));
        dirs.add(Path.of("/usr/lib/aarch64-linux-gnu"));
        dirs.add(Path.of("/usr/lib64"));
        dirs.add(Path.of("/usr/lib"));
        for (Path packages : pythonPackageFolders()) {
            dirs.add(packages.resolve("nvidia/cu13/lib"));
            dirs.add(packages.resolve("nvidia/cublas/lib"));
        }
        return dirs;
    }

    private static List<Path> pythonPackageFolders() {
        List<Path> out = new ArrayList<>();
        for (Path root : List.of(Path.of("/usr/local/lib"), Path.of("/usr/lib"), Path.of("/opt/conda/lib"))) {
            for (Path python : children(root, "python3*")) {
                out.add(python.resolve("site-packages"));
                out.add(python.resolve("dist-packages"));
            }
        }
        String home = System.getProperty("user.home");
        if (home != null) {
            for (Path python : children(Path.of(home, ".local/lib"), "python3*")) {
                out.add(python.resolve("site-packages"));
            }
        }
        return out;
    }

    private static List<Path> children(Path dir, String glob) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, glob)) {
            stream.forEach(out::add);
        } catch (IOException | SecurityException e) {
            return List.of();
        }
        return out;
    }

    /** Why nothing was found, naming what was looked for and how to point at it. */
    static String notFoundMessage(String property, Map<String, String> env) {
        String explicit = property != null && !property.isBlank() ? property : env.get(ENVIRONMENT);
        String start = explicit != null && !explicit.isBlank()
                ? "libcublasLt not found at " + explicit.strip() + " (given by " + (property != null && !property.isBlank()
                        ? "-D" + PROPERTY : ENVIRONMENT) + ")"
                : "libcublasLt (" + String.join(", ", NAMES) + ") not found";
        return start + "; looked in LD_LIBRARY_PATH, /usr/local/cuda*/lib64, the system library folders and the "
                + "nvidia pip wheels of PyTorch. The GPU DiT needs cuBLASLt for its matrix products: install the "
                + "CUDA toolkit's cuBLAS (12 or 13), or point -D" + PROPERTY + "=FILE or " + ENVIRONMENT
                + "=FILE at libcublasLt.so.*";
    }
}
