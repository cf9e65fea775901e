package tileattn.blas;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding libcublasLt and the errors when it is missing or not what it claims to be (no GPU needed). */
class CublasLtLibraryTest {

    @Test
    void explicitFileComesFirstThenLdLibraryPathPreferringVersion13(@TempDir Path dir) {
        List<Path> c = CublasLtLibrary.candidates("/opt/x/libcublasLt.so.12", Map.of("LD_LIBRARY_PATH", dir + "::/nope"));
        assertEquals(Path.of("/opt/x/libcublasLt.so.12"), c.get(0));
        assertEquals(dir.resolve("libcublasLt.so.13"), c.get(1));
        assertEquals(dir.resolve("libcublasLt.so.12"), c.get(2));
        assertEquals(dir.resolve("libcublasLt.so"), c.get(3));
        assertTrue(c.contains(Path.of("/usr/local/cuda/lib64/libcublasLt.so.13")), c.toString());
    }

    @Test
    void environmentVariableNamesTheFileWhenThePropertyIsAbsent() {
        List<Path> c = CublasLtLibrary.candidates(null, Map.of(CublasLtLibrary.ENVIRONMENT, "/e/libcublasLt.so.13"));
        assertEquals(Path.of("/e/libcublasLt.so.13"), c.getFirst());
    }

    @Test
    void findsAFileInLdLibraryPath(@TempDir Path dir) throws IOException {
        Path lib = Files.createFile(dir.resolve("libcublasLt.so.12"));
        assertEquals(lib, CublasLtLibrary.find(null, Map.of("LD_LIBRARY_PATH", dir.toString())).orElseThrow());
    }

    @Test
    void notFoundMessageSaysWhatWasLookedForAndHowToPointAtIt() {
        String m = CublasLtLibrary.notFoundMessage(null, Map.of());
        assertTrue(m.contains("libcublasLt.so.13") && m.contains("LD_LIBRARY_PATH") && m.contains("TILEATTN_CUBLASLT")
                && m.contains("-Dtileattn.cublaslt"), m);
        String given = CublasLtLibrary.notFoundMessage("/x/libcublasLt.so.13", Map.of());
        assertTrue(given.startsWith("libcublasLt not found at /x/libcublasLt.so.13 (given by -Dtileattn.cublaslt)"), given);
    }

    @Test
    void aFileThatIsNoLibraryIsReportedByName(@TempDir Path dir) throws IOException {
        Path fake = Files.writeString(dir.resolve("libcublasLt.so.13"), "not an ELF file");
        CublasLtUnavailableException e = assertThrows(CublasLtUnavailableException.class, () -> CublasLt.load(fake));
        assertTrue(e.getMessage().startsWith("cannot load " + fake), e.getMessage());
    }

    @Test
    void aLibraryWithoutTheFunctionsIsReportedWithTheMissingOne() {
        Path libm = List.of(Path.of("/lib/x86_64-linux-gnu/libm.so.6"), Path.of("/usr/lib/x86_64-linux-gnu/libm.so.6"),
                Path.of("/lib64/libm.so.6")).stream().filter(Files::isRegularFile).findFirst().orElse(null);
        org.junit.jupiter.api.Assumptions.assumeTrue(libm != null, "no libm.so.6 to stand in for a wrong library");
        CublasLtUnavailableException e = assertThrows(CublasLtUnavailableException.class, () -> CublasLt.load(libm));
        assertEquals(libm + " has no function cublasLtGetStatusName; tileattn needs cuBLASLt 12 or newer", e.getMessage());
    }

    @Test
    void heuristicResultLayoutMatchesTheHeader() {
        // cublasLtMatmulHeuristicResult_t: 64-byte algo, size_t, cublasStatus_t, float, int[4].
        assertEquals(64 + 8 + 4 + 4 + 16, CublasLt.HEURISTIC_RESULT_BYTES);
        assertEquals(CublasLt.ALGO_BYTES, CublasLt.HEURISTIC_WORKSPACE_OFFSET);
        assertEquals(CublasLt.HEURISTIC_WORKSPACE_OFFSET + 8, CublasLt.HEURISTIC_STATE_OFFSET);
        assertEquals(CublasLt.EPILOGUE_GELU | CublasLt.EPILOGUE_BIAS, CublasLt.EPILOGUE_GELU_BIAS);
    }
}
