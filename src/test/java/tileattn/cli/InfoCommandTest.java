package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import tileattn.cuda.Cuda;
import tileattn.cuda.CudaStatus;

class InfoCommandTest {

    private static String[] run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new TileattnCommand());
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        int code = cli.execute(args);
        return new String[]{Integer.toString(code), out.toString(), err.toString()};
    }

    @Test
    void infoDescribesTheGpuOrSaysTheCpuPathWillBeUsed() {
        String[] result = run("info");
        assertEquals("0", result[0], result[2]);
        CudaStatus status = Cuda.status();
        if (status.available()) {
            assertTrue(result[1].contains("CUDA driver: " + status.driverVersionString()), result[1]);
            assertTrue(result[1].contains("compute capability"), result[1]);
        } else {
            assertTrue(result[1].contains("No usable GPU: " + status.reason()), result[1]);
            assertTrue(result[1].contains("The CPU path will be used."), result[1]);
        }
        assertTrue(result[1].contains("CUDA kernels in this jar: "), result[1]);
    }
}
