package tileattn.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.IParameterExceptionHandler;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * Turns every failure into one line on stderr and exit code {@value #EXIT_BAD_INPUT}: a usage hint for bad
 * command-line syntax, the exception's own message for failures while running. {@code --verbose} adds the stack
 * trace.
 */
final class CliErrors implements IExecutionExceptionHandler, IParameterExceptionHandler {

    static final int EXIT_BAD_INPUT = 2;

    @Override
    public int handleParseException(ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        PrintWriter err = cmd.getErr();
        // Some of picocli's own messages already start with "Error: ".
        err.println("error: " + e.getMessage().replaceFirst("^Error: ", ""));
        if (verbose(cmd.getParseResult())) {
            e.printStackTrace(err);
        }
        err.println("Try '" + cmd.getCommandSpec().qualifiedName() + " --help' for usage.");
        err.flush();
        return EXIT_BAD_INPUT;
    }

    @Override
    public int handleExecutionException(Exception e, CommandLine cmd, ParseResult parseResult) {
        PrintWriter err = cmd.getErr();
        err.println("error: " + describe(e));
        if (verbose(parseResult)) {
            e.printStackTrace(err);
        }
        err.flush();
        return EXIT_BAD_INPUT;
    }

    /** The message, or the exception type where there is none; causes are followed for wrapped exceptions. */
    static String describe(Throwable e) {
        Throwable t = e;
        while (t.getMessage() == null && t.getCause() != null) {
            t = t.getCause();
        }
        String message = t.getMessage();
        if (message == null || message.isBlank()) {
            return t.getClass().getSimpleName() + " (run with --verbose for details)";
        }
        return message;
    }

    private static boolean verbose(ParseResult result) {
        for (ParseResult r = result; r != null; r = r.subcommand()) {
            if (r.hasMatchedOption("--verbose")) {
                return true;
            }
        }
        return false;
    }
}
