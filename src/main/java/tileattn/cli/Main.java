package tileattn.cli;

import java.io.File;
import java.util.ArrayList;
import java.util.List;

/**
 * Entry point of {@code java -jar tileattn.jar}. A jar manifest cannot add incubator modules, so when the Vector
 * API module is missing from the boot layer this relaunches the same JVM with the flags tileattn needs; the
 * user types none of them.
 */
public final class Main {

    private static final String RELAUNCHED = "TILEATTN_RELAUNCHED";

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        boolean hasVector = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        if (!hasVector && System.getenv(RELAUNCHED) == null) {
            Integer code = relaunch(args);
            if (code != null) {
                System.exit(code);
            }
        }
        System.exit(TileattnCommand.run(args));
    }

    /** Runs this program again with the module flags; null when the java executable or jar cannot be found. */
    private static Integer relaunch(String[] args) throws Exception {
        String java = ProcessHandle.current().info().command().orElse(null);
        String classPath = System.getProperty("java.class.path");
        if (java == null || classPath == null || classPath.isEmpty()) {
            return null;
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        cmd.add("--add-modules");
        cmd.add("jdk.incubator.vector");
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.addAll(ProcessHandle.current().info().arguments().map(List::of).orElse(List.of()).stream()
                .takeWhile(a -> !a.equals("-jar") && !a.equals("-cp") && !a.equals("-classpath"))
                .filter(a -> a.startsWith("-X") || a.startsWith("-D"))
                .toList());
        cmd.add("-cp");
        cmd.add(classPath.replace(File.pathSeparator, File.pathSeparator));
        cmd.add(Main.class.getName());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
        pb.environment().put(RELAUNCHED, "1");
        Process p = pb.start();
        return p.waitFor();
    }
}
