package tileattn.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {

    @TempDir
    Path dir;

    private static FloatTensor random(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(7) - 3));
        }
        return t;
    }

    @Test
    void roundTripsEveryDtypeWithMetadata() {
        Random rnd = new Random(5);
        FloatTensor a = random(rnd, 2, 3, 7, 5);
        FloatTensor b = random(rnd, 11);
        FloatTensor c = random(rnd, 3, 1, 9);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("video", "12,24,24");
        meta.put("text_length", "7");
        Path file = dir.resolve("x.safetensors");
        SafetensorsWriter.write(file, List.of(new NamedTensor("a", a, DType.F32), new NamedTensor("b", b, DType.F16),
                new NamedTensor("c", c, DType.BF16)), meta);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("a", "b", "c"), f.names());
            assertEquals(meta, f.metadata());
            assertEquals(DType.F16, f.info("b").dtype());
            assertArrayEquals(new long[]{3, 1, 9}, f.info("c").shape());
            FloatTensor ra = f.read("a");
            assertArrayEquals(a.shape(), ra.shape());
            assertArrayEquals(a.data(), ra.data());
            FloatTensor rb = f.read("b");
            for (int i = 0; i < b.size(); i++) {
                assertEquals(ReducedPrecision.fromF16(ReducedPrecision.toF16(b.data()[i])), rb.data()[i]);
            }
            FloatTensor rc = f.read("c");
            for (int i = 0; i < c.size(); i++) {
                assertEquals(ReducedPrecision.fromBf16(ReducedPrecision.toBf16(c.data()[i])), rc.data()[i]);
                assertEquals(c.data()[i], rc.data()[i], Math.abs(c.data()[i]) / 128, "bf16 keeps 8 significant bits");
            }
        }
    }

    @Test
    void headerIsPaddedSoDataIsAligned() throws IOException {
        Path file = dir.resolve("p.safetensors");
        SafetensorsWriter.write(file, List.of(new NamedTensor("odd_name", random(new Random(1), 3), DType.F32)));
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        long n = bytes.getLong(0);
        assertEquals(0, n % 8);
        assertEquals(8 + n + 12, bytes.capacity());
    }

    @Test
    void readsAHandWrittenFile() throws IOException {
        // Bytes built by hand the way any safetensors writer lays them out, offsets not starting at 0 for the
        // second tensor, no padding, no metadata.
        String json = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                + "\"h\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[4,8]},"
                + "\"f\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]}}";
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length + 12).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(header.length).put(header);
        buf.putShort((short) 0x4049).putShort((short) 0xc000); // bf16 3.140625, -2
        buf.putShort((short) 0x3c00).putShort((short) 0x3555); // f16 1, 0.33325195
        buf.putFloat(-7.25f);
        Path file = dir.resolve("hand.safetensors");
        Files.write(file, buf.array());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new float[]{3.140625f, -2f}, f.read("w").data());
            assertArrayEquals(new int[]{1, 2}, f.read("h").shape());
            assertArrayEquals(new float[]{1f, 0.333251953125f}, f.read("h").data());
            assertEquals(0, f.read("f").rank());
            assertArrayEquals(new float[]{-7.25f}, f.read("f").data());
            assertTrue(f.metadata().isEmpty());
        }
    }

    @Test
    void writesTheBytesOtherReadersExpect() throws IOException {
        Path file = dir.resolve("w.safetensors");
        SafetensorsWriter.write(file, List.of(new NamedTensor("t", new FloatTensor(new int[]{2}, new float[]{1f, -2f}),
                DType.BF16)), Map.of("k", "v"));
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) buf.getLong(0);
        String header = new String(bytes, 8, n, StandardCharsets.UTF_8).strip();
        assertEquals("{\"__metadata__\":{\"k\":\"v\"},\"t\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}",
                header);
        assertEquals(0x3f80, buf.getShort(8 + n) & 0xffff);
        assertEquals(0xc000, buf.getShort(8 + n + 2) & 0xffff);
    }

    private Path rawFile(String name, String json, int dataBytes) throws IOException {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(header.length).put(header);
        Path file = dir.resolve(name);
        Files.write(file, buf.array());
        return file;
    }

    private TensorFileException openFails(Path file) {
        TensorFileException e = assertThrows(TensorFileException.class, () -> {
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                fail("opened " + f.names());
            }
        });
        assertTrue(e.getMessage().contains(file.toString()), "names the file: " + e.getMessage());
        return e;
    }

    @Test
    void missingTensorNamesItAndListsWhatIsThere() {
        Path file = dir.resolve("m.safetensors");
        SafetensorsWriter.write(file, List.of(new NamedTensor("q", random(new Random(2), 4), DType.F32),
                new NamedTensor("k", random(new Random(3), 4), DType.F32)));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            TensorFileException e = assertThrows(TensorFileException.class, () -> f.read("v"));
            assertTrue(e.getMessage().contains("'v'"), e.getMessage());
            assertTrue(e.getMessage().contains("q, k"), e.getMessage());
            assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        }
    }

    @Test
    void unknownDtypeIsNamed() throws IOException {
        Path file = rawFile("d.safetensors", "{\"q\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
        String msg = openFails(file).getMessage();
        assertTrue(msg.contains("'F64'") && msg.contains("'q'"), msg);
    }

    @Test
    void truncatedFiles() throws IOException {
        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[]{1, 2, 3});
        assertTrue(openFails(tiny).getMessage().contains("truncated"));

        Path full = dir.resolve("full.safetensors");
        SafetensorsWriter.write(full, List.of(new NamedTensor("q", random(new Random(4), 64), DType.F32)));
        byte[] bytes = Files.readAllBytes(full);
        Path cutData = dir.resolve("cut-data.safetensors");
        Files.write(cutData, Arrays.copyOf(bytes, bytes.length - 5));
        String msg = openFails(cutData).getMessage();
        assertTrue(msg.contains("out of range") && msg.contains("truncated"), msg);

        Path cutHeader = dir.resolve("cut-header.safetensors");
        Files.write(cutHeader, Arrays.copyOf(bytes, 20));
        assertTrue(openFails(cutHeader).getMessage().contains("truncated"));
    }

    @Test
    void offsetsOutOfRange() throws IOException {
        Path file = rawFile("o.safetensors", "{\"q\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 16);
        String msg = openFails(file).getMessage();
        assertTrue(msg.contains("[8, 24]") && msg.contains("out of range"), msg);
        Path backwards = rawFile("b.safetensors", "{\"q\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16);
        assertTrue(openFails(backwards).getMessage().contains("out of range"));
    }

    @Test
    void shapeDisagreeingWithOffsets() throws IOException {
        Path file = rawFile("s.safetensors", "{\"q\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 16);
        String msg = openFails(file).getMessage();
        assertTrue(msg.contains("[2, 3]") && msg.contains("12 bytes") && msg.contains("16"), msg);
    }

    @Test
    void malformedHeaders() throws IOException {
        assertTrue(openFails(rawFile("j.safetensors", "{\"q\": [", 0)).getMessage().contains("JSON"));
        assertTrue(openFails(rawFile("n.safetensors", "{\"q\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0))
                .getMessage().contains("non-negative"));
        assertTrue(openFails(rawFile("md.safetensors", "{\"__metadata__\":{\"a\":1}}", 0))
                .getMessage().contains("not a string"));
        assertTrue(openFails(rawFile("dup.safetensors", "{\"q\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                + "\"q\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0)).getMessage().contains("Duplicate field 'q'"));
        Path huge = dir.resolve("huge.safetensors");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array());
        assertTrue(openFails(huge).getMessage().contains("header length"));
    }

    @Test
    void missingFileIsNamed() {
        Path file = dir.resolve("nope.safetensors");
        assertTrue(openFails(file).getMessage().contains("no such file"));
    }

    @Test
    void writerRejectsDuplicateNames() {
        Path file = dir.resolve("dup.safetensors");
        FloatTensor t = random(new Random(6), 2);
        var e = assertThrows(TensorFileException.class, () -> SafetensorsWriter.write(file,
                List.of(new NamedTensor("q", t, DType.F32), new NamedTensor("q", t, DType.F16))));
        assertTrue(e.getMessage().contains("'q' given twice"), e.getMessage());
    }
}
