package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

class CliPartsTest {

    @TempDir
    Path dir;

    @Test
    void progressBarDrawsOnlyWhenEnabled() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        try (ProgressBar bar = new ProgressBar(out, true, 4)) {
            bar.label("dense");
            bar.step();
            bar.step();
        }
        String drawn = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(drawn.contains("2/4 dense"), drawn);
        assertTrue(drawn.contains("[" + "#".repeat(15) + " ".repeat(15) + "]"), drawn);
        ByteArrayOutputStream quiet = new ByteArrayOutputStream();
        try (ProgressBar bar = new ProgressBar(new PrintStream(quiet), false, 4)) {
            bar.step();
        }
        assertEquals(0, quiet.size());
    }

    @Test
    void windowsFile() throws IOException {
        Path ok = dir.resolve("ok.json");
        Files.writeString(ok, "{\"windows\": [[3,3,3], [5,6,10]]}");
        assertEquals(List.of(new Window(3, 3, 3), new Window(5, 6, 10)), WindowsFile.read(ok));
        String[][] bad = {
            {"{\"windows\": []}", "one window per head"},
            {"{\"w\": [[1,1,1]]}", "one window per head"},
            {"{\"windows\": [[1,1,1], [1,0,1]]}", "head 1"},
            {"{\"windows\": [[1,1,1.5]]}", "head 0"},
            {"[1,", "not valid JSON"},
        };
        for (String[] c : bad) {
            Path f = dir.resolve("bad.json");
            Files.writeString(f, c[0]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WindowsFile.read(f));
            assertTrue(e.getMessage().contains(c[1]) && e.getMessage().contains("bad.json"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> WindowsFile.read(dir.resolve("none.json")))
                .getMessage().contains("no such windows file"));
    }

    @Test
    void tableAlignsColumns() {
        TextTable t = new TextTable("method", "ms");
        t.add("dense", "1234.5");
        t.add("sta", "7.0");
        StringWriter s = new StringWriter();
        t.print(new PrintWriter(s));
        assertEquals(List.of("method      ms", "------  ------", "dense   1234.5", "sta        7.0"), s.toString().lines()
                .toList());
        assertThrows(IllegalArgumentException.class, () -> t.add("only one"));
    }

    @Test
    void relativeL2AndMedian() {
        FloatTensor a = new FloatTensor(new int[]{2}, new float[]{3, 4});
        FloatTensor b = new FloatTensor(new int[]{2}, new float[]{3, 5});
        assertEquals(1 / 5.0, Measure.relativeL2(b, a), 1e-12);
        assertEquals(2.5, Measure.median(new double[]{4, 1, 2, 3}));
        assertEquals(3, Measure.median(new double[]{5, 3, 1}));
    }

    @Test
    void unknownCommandAndHelp() {
        CliRun unknown = CliRun.of("frobnicate");
        assertEquals(2, unknown.exitCode());
        assertTrue(unknown.err().contains("Unmatched argument") && unknown.err().contains("Try 'tileattn --help'"),
                unknown.err());
        CliRun help = CliRun.of("--help");
        assertEquals(0, help.exitCode());
        for (String c : new String[]{"demo", "attend", "bench"}) {
            assertTrue(help.out().contains(c), help.out());
        }
    }
}
