package tileattn.tensor;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes safetensors files. Tensors are laid out in the order given; the header is padded with spaces to a
 * multiple of 8 bytes so every tensor's data starts 8-byte aligned, as the reference writer does.
 */
public final class SafetensorsWriter {

    private static final int CHUNK_BYTES = 1 << 20;

    private SafetensorsWriter() {
    }

    public static void write(Path path, List<NamedTensor> tensors) {
        write(path, tensors, Map.of());
    }

    public static void write(Path path, List<NamedTensor> tensors, Map<String, String> metadata) {
        byte[] header = header(path, tensors, metadata);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            writeFully(ch, length);
            writeFully(ch, ByteBuffer.wrap(header));
            ByteBuffer buf = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (NamedTensor t : tensors) {
                writeData(ch, buf, t.tensor().data(), t.dtype());
            }
        } catch (NoSuchFileException e) {
            throw new TensorFileException(path, "cannot write: its directory does not exist", e);
        } catch (IOException e) {
            throw new TensorFileException(path, "cannot write: " + e.getMessage(), e);
        }
    }

    private static byte[] header(Path path, List<NamedTensor> tensors, Map<String, String> metadata) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(SafetensorsFile.METADATA_KEY);
            metadata.forEach(meta::put);
        }
        Set<String> seen = new HashSet<>();
        long offset = 0;
        for (NamedTensor t : tensors) {
            if (!seen.add(t.name())) {
                throw new TensorFileException(path, "tensor name '" + t.name() + "' given twice");
            }
            long bytes = (long) t.tensor().size() * t.dtype().bytes();
            ObjectNode entry = root.putObject(t.name());
            entry.put("dtype", t.dtype().safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (int s : t.tensor().shape()) {
                shape.add(s);
            }
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json;
        try {
            json = mapper.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new TensorFileException(path, "cannot encode header: " + e.getOriginalMessage(), e);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] header = new byte[padded];
        System.arraycopy(json, 0, header, 0, json.length);
        java.util.Arrays.fill(header, json.length, padded, (byte) ' ');
        return header;
    }

    private static void writeData(FileChannel ch, ByteBuffer buf, float[] values, DType dtype) throws IOException {
        for (float v : values) {
            if (buf.remaining() < dtype.bytes()) {
                buf.flip();
                writeFully(ch, buf);
                buf.clear();
            }
            switch (dtype) {
                case F32 -> buf.putFloat(v);
                case F16 -> buf.putShort(ReducedPrecision.toF16(v));
                case BF16 -> buf.putShort(ReducedPrecision.toBf16(v));
            }
        }
        buf.flip();
        writeFully(ch, buf);
        buf.clear();
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }
}
