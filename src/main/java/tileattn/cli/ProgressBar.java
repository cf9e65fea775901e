package tileattn.cli;

import java.io.PrintStream;

/**
 * A one-line progress bar on stderr for long runs, redrawn in place. It draws only when stderr is a terminal
 * (so logs and captured output stay clean) and erases itself when closed. Written here rather than taken from a
 * library: it is a few lines, and me.tongfei:progressbar would bring JLine into the jar for the same one line.
 */
final class ProgressBar implements AutoCloseable {

    private static final int WIDTH = 30;

    private final PrintStream out;
    private final boolean enabled;
    private final int total;
    private int done;
    private String label = "";

    ProgressBar(int total) {
        this(System.err, System.console() != null, total);
    }

    ProgressBar(PrintStream out, boolean enabled, int total) {
        this.out = out;
        this.enabled = enabled;
        this.total = Math.max(1, total);
        draw();
    }

    /** Names the step now running. */
    void label(String text) {
        label = text;
        draw();
    }

    void step() {
        done = Math.min(total, done + 1);
        draw();
    }

    private void draw() {
        if (!enabled) {
            return;
        }
        int filled = done * WIDTH / total;
        out.print("\r[" + "#".repeat(filled) + " ".repeat(WIDTH - filled) + "] " + done + "/" + total + " " + label
                + "\033[K");
        out.flush();
    }

    @Override
    public void close() {
        if (enabled) {
            out.print("\r\033[K");
            out.flush();
        }
    }
}
