package tileattn.dit;

import java.util.Locale;

/** Fails early, with the flag to pass, when the Java heap cannot hold what is about to be allocated. */
final class HeapCheck {

    /** Room kept for activations and transient copies beyond the tensors themselves. */
    private static final long SLACK = 512L << 20;

    private HeapCheck() {
    }

    /**
     * The fp32 parameters plus what a guided run keeps besides them: every block's cross-attention keys and values
     * for a conditional and an unconditional prompt.
     */
    static long modelBytes(WanConfig c) {
        long crossKv = 2L * c.layers() * 2 * c.textLength() * c.dim();
        return (c.parameterCount() + crossKv) * Float.BYTES;
    }

    static void require(long bytes, String what) {
        Runtime rt = Runtime.getRuntime();
        long available = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        long need = bytes + SLACK;
        if (need > available) {
            long suggestGb = (need + rt.maxMemory() - available) / (1L << 30) + 2;
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "%s in fp32 needs about %.1f GiB of Java heap but only %.1f GiB is free (max heap %.1f GiB); run with a larger "
                            + "heap, e.g. java -Xmx%dg -jar tileattn.jar ...", what, gib(need), gib(available),
                    gib(rt.maxMemory()), suggestGb));
        }
    }

    private static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }
}
