package tileattn.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The top-level command; subcommands are registered here. */
@Command(name = "tileattn", mixinStandardHelpOptions = true, version = "tileattn 0.1.0",
        description = "Sliding Tile Attention and Video Sparse Attention for video diffusion transformers.",
        subcommands = {CommandLine.HelpCommand.class, DemoCommand.class, AttendCommand.class, BenchCommand.class,
            InfoCommand.class, SearchCommand.class, DitCommand.class})
public final class TileattnCommand implements Runnable {

    @Option(names = "--verbose", scope = ScopeType.INHERIT,
            description = "On an error, print the full stack trace as well as the one-line message.")
    boolean verbose;

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    /** The command line as the CLI uses it: one-line errors and exit code 2 for any bad input or failure. */
    public static CommandLine commandLine() {
        CliErrors errors = new CliErrors();
        return new CommandLine(new TileattnCommand())
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setExecutionExceptionHandler(errors)
                .setParameterExceptionHandler(errors);
    }

    public static int run(String... args) {
        return commandLine().execute(args);
    }
}
