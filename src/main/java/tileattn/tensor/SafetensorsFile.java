package tileattn.tensor;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file opened for reading. The file is memory-mapped, not copied: only the tensors asked for are
 * converted to fp32 heap tensors. Layout: an 8-byte little-endian header length N, N bytes of JSON header
 * {@code {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}}, then the data.
 * Every problem is reported as a {@link TensorFileException} naming this file.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** The format's own limit; anything larger is a corrupt length field, not a header. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;
    static final String METADATA_KEY = "__metadata__";

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment data, Map<String, TensorInfo> tensors,
                            Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new TensorFileException(path, "truncated safetensors file: " + size
                        + " bytes, too short for the 8-byte header length");
            }
            MemorySegment file = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLength = file.get(I64_LE, 0);
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
                throw new TensorFileException(path, "not a safetensors file: header length field is " + headerLength
                        + " (expected 2.." + MAX_HEADER_BYTES + ")");
            }
            if (8 + headerLength > size) {
                throw new TensorFileException(path, "truncated safetensors file: header claims " + headerLength
                        + " bytes but only " + (size - 8) + " follow the length field");
            }
            byte[] headerBytes = file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
            MemorySegment data = file.asSlice(8 + headerLength);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = parseHeader(path, new String(headerBytes, StandardCharsets.UTF_8),
                    data.byteSize(), metadata);
            return new SafetensorsFile(path, arena, data, Collections.unmodifiableMap(tensors),
                    Collections.unmodifiableMap(metadata));
        } catch (NoSuchFileException e) {
            arena.close();
            throw new TensorFileException(path, "no such file", e);
        } catch (IOException e) {
            arena.close();
            throw new TensorFileException(path, "cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Map<String, TensorInfo> parseHeader(Path path, String json, long dataBytes,
                                                       Map<String, String> metadataOut) {
        JsonNode root;
        try {
            root = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).readTree(json);
        } catch (JsonProcessingException e) {
            throw new TensorFileException(path, "safetensors header is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new TensorFileException(path, "safetensors header must be a JSON object");
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            String name = field.getKey();
            JsonNode node = field.getValue();
            if (name.equals(METADATA_KEY)) {
                readMetadata(path, node, metadataOut);
                continue;
            }
            tensors.put(name, readEntry(path, name, node, dataBytes));
        }
        return tensors;
    }

    private static void readMetadata(Path path, JsonNode node, Map<String, String> out) {
        if (!node.isObject()) {
            throw new TensorFileException(path, "__metadata__ must be an object of strings");
        }
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new TensorFileException(path, "__metadata__ value of '" + e.getKey() + "' is not a string");
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
    }

    private static TensorInfo readEntry(Path path, String name, JsonNode node, long dataBytes) {
        String where = "tensor '" + name + "'";
        if (!node.isObject()) {
            throw new TensorFileException(path, where + ": header entry is not an object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new TensorFileException(path, where + ": missing dtype");
        }
        DType dtype;
        try {
            dtype = DType.parse(dtypeNode.textValue());
        } catch (IllegalArgumentException e) {
            throw new TensorFileException(path, where + ": " + e.getMessage());
        }
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new TensorFileException(path, where + ": missing shape");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode s = shapeNode.get(i);
            if (!s.canConvertToLong() || !s.isIntegralNumber() || s.longValue() < 0) {
                throw new TensorFileException(path, where + ": shape " + shapeNode + " must hold non-negative integers");
            }
            shape[i] = s.longValue();
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2
                || !offsets.get(0).isIntegralNumber() || !offsets.get(1).isIntegralNumber()) {
            throw new TensorFileException(path, where + ": data_offsets must be [begin, end]");
        }
        long begin = offsets.get(0).longValue();
        long end = offsets.get(1).longValue();
        if (begin < 0 || end < begin || end > dataBytes) {
            throw new TensorFileException(path, where + ": data_offsets [" + begin + ", " + end
                    + "] out of range of the " + dataBytes + "-byte data section"
                    + (end > dataBytes ? " (file truncated?)" : ""));
        }
        TensorInfo info = new TensorInfo(name, dtype, shape, begin, end);
        long expected;
        try {
            expected = Math.multiplyExact(info.elementCount(), dtype.bytes());
        } catch (ArithmeticException e) {
            throw new TensorFileException(path, where + ": shape " + info.shapeString() + " is too large");
        }
        if (end - begin != expected) {
            throw new TensorFileException(path, where + ": shape " + info.shapeString() + " of " + dtype + " needs "
                    + expected + " bytes but data_offsets [" + begin + ", " + end + "] span " + (end - begin));
        }
        return info;
    }

    public Path path() {
        return path;
    }

    /** Tensor names in header order. */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The string metadata of the header ({@code __metadata__}); empty when absent. */
    public Map<String, String> metadata() {
        return metadata;
    }

    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new TensorFileException(path, "no tensor named '" + name + "'; the file holds "
                    + (tensors.isEmpty() ? "no tensors" : String.join(", ", tensors.keySet())));
        }
        return info;
    }

    /** Reads one tensor and converts it to fp32. */
    public FloatTensor read(String name) {
        TensorInfo info = info(name);
        long[] shape = info.shape();
        int[] intShape = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] > Integer.MAX_VALUE) {
                throw new TensorFileException(path, "tensor '" + name + "' has extent " + shape[i] + " beyond 2^31-1");
            }
            intShape[i] = (int) shape[i];
        }
        long count = info.elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new TensorFileException(path, "tensor '" + name + "' " + info.shapeString()
                    + " has more elements than a Java array holds");
        }
        float[] values = new float[(int) count];
        MemorySegment src = data.asSlice(info.begin(), info.end() - info.begin());
        switch (info.dtype()) {
            case F32 -> MemorySegment.copy(src, F32_LE, 0, values, 0, values.length);
            case F16 -> {
                for (int i = 0; i < values.length; i++) {
                    values[i] = ReducedPrecision.fromF16(src.getAtIndex(I16_LE, i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < values.length; i++) {
                    values[i] = ReducedPrecision.fromBf16(src.getAtIndex(I16_LE, i));
                }
            }
        }
        return new FloatTensor(intShape, values);
    }

    @Override
    public void close() {
        arena.close();
    }
}
