package tileattn.dit;

import java.util.Locale;

/** Fails early, with the flag to pass, when the Java heap cannot hold what is about to be allocated. */
final class HeapCheck {

    /** Room kept for activations and transient copies beyond the tensors themselves. */
    private static final long SLACK = 256L << 20;

    private HeapCheck() {
    }

    static void require(long bytes, String what) {
        Runtime rt = Runtime.getRuntime();
        long available = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (bytes + SLACK > available) {
            long suggestGb = (bytes + SLACK + rt.maxMemory() - available) / (1L << 30) + 2;
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "%s need %.1f GiB of Java heap but only %.1f GiB is free (max heap %.1f GiB); run with a larger "
                            + "heap, e.g. java -Xmx%dg -jar tileattn.jar ...", what, gib(bytes), gib(available),
                    gib(rt.maxMemory()), suggestGb));
        }
    }

    private static double gib(long bytes) {
        return bytes / (double) (1L << 30);
    }
}
