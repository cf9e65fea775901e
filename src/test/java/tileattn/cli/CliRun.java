package tileattn.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/** Runs the CLI in-process and captures what it prints. */
record CliRun(int exitCode, String out, String err) {

    static CliRun of(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cmd = TileattnCommand.commandLine();
        cmd.setOut(new PrintWriter(out, true));
        cmd.setErr(new PrintWriter(err, true));
        int code = cmd.execute(args);
        return new CliRun(code, out.toString(), err.toString());
    }

    /** Fails unless the run ended with exit code 2 and exactly one error line free of stack frames. */
    String assertOneLineError() {
        org.junit.jupiter.api.Assertions.assertEquals(2, exitCode, () -> "exit code; stderr: " + err);
        long errorLines = err.lines().filter(l -> l.startsWith("error: ")).count();
        org.junit.jupiter.api.Assertions.assertEquals(1, errorLines, () -> "one error line in: " + err);
        org.junit.jupiter.api.Assertions.assertFalse(err.contains("\tat "), () -> "no stack trace in: " + err);
        org.junit.jupiter.api.Assertions.assertFalse(err.contains("error: Error"), () -> "no doubled prefix: " + err);
        return err.lines().filter(l -> l.startsWith("error: ")).findFirst().orElseThrow();
    }
}
