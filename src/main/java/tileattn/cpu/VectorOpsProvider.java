package tileattn.cpu;

/**
 * Chooses the {@link VectorOps} implementation once per JVM. The Vector API class is loaded by name only when
 * {@code jdk.incubator.vector} is in the boot layer, so a JVM started without that module never resolves an
 * incubator class and runs the plain-Java path instead.
 */
public final class VectorOpsProvider {

    /** Set to {@code scalar} to force the plain-Java path (for comparisons and tests). */
    public static final String PROPERTY = "tileattn.vectorops";

    private static final VectorOps CHOSEN = choose();

    private VectorOpsProvider() {
    }

    public static VectorOps get() {
        return CHOSEN;
    }

    /** Whether the Vector API implementation can be used in this JVM. */
    public static boolean vectorApiAvailable() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    /** The Vector API implementation, or the plain-Java one where the module is absent. */
    public static VectorOps panamaOrScalar() {
        if (!vectorApiAvailable()) {
            return new ScalarVectorOps();
        }
        try {
            return (VectorOps) Class.forName("tileattn.cpu.PanamaVectorOps").getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | LinkageError e) {
            return new ScalarVectorOps();
        }
    }

    private static VectorOps choose() {
        if ("scalar".equalsIgnoreCase(System.getProperty(PROPERTY, ""))) {
            return new ScalarVectorOps();
        }
        return panamaOrScalar();
    }
}
