package tileattn.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The top-level command; subcommands are registered here. */
@Command(name = "tileattn", mixinStandardHelpOptions = true, version = "tileattn 0.1.0",
        description = "Sliding Tile Attention and Video Sparse Attention for video diffusion transformers.",
        subcommands = {CommandLine.HelpCommand.class, InfoCommand.class})
public final class TileattnCommand implements Runnable {

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static int run(String... args) {
        return new CommandLine(new TileattnCommand()).execute(args);
    }
}
