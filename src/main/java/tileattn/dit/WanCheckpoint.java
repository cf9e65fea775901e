package tileattn.dit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.SafetensorsWriter;
import tileattn.tensor.TensorFileException;
import tileattn.tensor.TensorInfo;

/**
 * Wan transformer checkpoints in the diffusers layout: a folder holding either
 * {@value #INDEX} (whose "weight_map" names the shard file of every parameter) with its shards, or a single
 * {@value #SINGLE}. A pipeline folder whose {@code transformer/} subfolder holds these works too, and so does a
 * path straight to one .safetensors file. F32, F16 and BF16 tensors are read and widened to fp32. Every problem
 * names the file and the parameter.
 */
public final class WanCheckpoint {

    public static final String INDEX = "diffusion_pytorch_model.safetensors.index.json";
    public static final String SINGLE = "diffusion_pytorch_model.safetensors";
    public static final String CONFIG = "config.json";

    private WanCheckpoint() {
    }

    public static WanWeights load(Path location, WanConfig config) {
        Path dir = folder(location);
        if (dir != null) {
            checkConfig(dir.resolve(CONFIG), config);
        }
        Map<String, Path> fileOf = dir == null ? null : weightMap(dir);
        Path single = dir == null ? location : dir.resolve(SINGLE);
        HeapCheck.require(HeapCheck.modelBytes(config), config.name());
        Map<Path, SafetensorsFile> open = new HashMap<>();
        try {
            return WanWeights.from(config, (name, shape) -> {
                Path file = fileOf == null ? single : fileOf.get(name);
                if (file == null) {
                    throw new TensorFileException(dir.resolve(INDEX), "parameter '" + name + "' (shape "
                            + Arrays.toString(shape) + " in " + config.name() + ") is missing from weight_map"
                            + namingHint(fileOf.keySet()));
                }
                SafetensorsFile f = open.computeIfAbsent(file, SafetensorsFile::open);
                if (!f.contains(name)) {
                    throw new TensorFileException(file, "parameter '" + name + "' (shape " + Arrays.toString(shape)
                            + " in " + config.name() + ") is missing" + namingHint(f.names()));
                }
                TensorInfo info = f.info(name);
                if (!Arrays.equals(info.shape(), Arrays.stream(shape).asLongStream().toArray())) {
                    throw new TensorFileException(file, "parameter '" + name + "' has shape " + info.shapeString()
                            + " but " + config.name() + " needs " + Arrays.toString(shape));
                }
                return f.read(name);
            });
        } finally {
            open.values().forEach(SafetensorsFile::close);
        }
    }

    /** The folder to read, or null when {@code location} is a single .safetensors file. */
    private static Path folder(Path location) {
        if (Files.isRegularFile(location)) {
            return null;
        }
        if (!Files.isDirectory(location)) {
            throw new TensorFileException(location, "no such checkpoint folder or file");
        }
        if (!hasCheckpoint(location) && hasCheckpoint(location.resolve("transformer"))) {
            return location.resolve("transformer");
        }
        if (!hasCheckpoint(location)) {
            throw new TensorFileException(location, "no diffusers transformer checkpoint here: expected " + INDEX
                    + " (with its shards) or " + SINGLE + ", or a transformer/ folder holding one");
        }
        return location;
    }

    private static boolean hasCheckpoint(Path dir) {
        return Files.isRegularFile(dir.resolve(INDEX)) || Files.isRegularFile(dir.resolve(SINGLE));
    }

    /** Parameter name → shard file, or null when the folder holds a single file and no index. */
    private static Map<String, Path> weightMap(Path dir) {
        Path index = dir.resolve(INDEX);
        if (!Files.isRegularFile(index)) {
            return null;
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(index));
        } catch (IOException e) {
            throw new TensorFileException(index, "cannot read the index: " + e.getMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new TensorFileException(index, "expected an object \"weight_map\": {parameter: shard file}");
        }
        Map<String, Path> fileOf = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isTextual()) {
                throw new TensorFileException(index, "weight_map entry of '" + e.getKey() + "' is not a file name");
            }
            fileOf.put(e.getKey(), dir.resolve(e.getValue().textValue()));
        }
        return fileOf;
    }

    /** Says so when the names look like the original Wan code's rather than diffusers'. */
    private static String namingHint(Iterable<String> names) {
        for (String n : names) {
            if (n.contains(".self_attn.") || n.startsWith("head.") || n.startsWith("time_embedding.")) {
                return " (the file uses the original Wan parameter names such as '" + n + "'; tileattn reads the "
                        + "diffusers layout, e.g. from Wan-AI/Wan2.1-T2V-1.3B-Diffusers)";
            }
        }
        return "";
    }

    /** Compares a diffusers config.json, when present, with the configuration asked for. */
    private static void checkConfig(Path file, WanConfig c) {
        if (!Files.isRegularFile(file)) {
            return;
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new TensorFileException(file, "cannot read: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new TensorFileException(file, "expected a JSON object");
        }
        Map<String, Integer> expected = new LinkedHashMap<>();
        expected.put("num_layers", c.layers());
        expected.put("num_attention_heads", c.heads());
        expected.put("attention_head_dim", c.headDim());
        expected.put("ffn_dim", c.ffnDim());
        expected.put("in_channels", c.inChannels());
        expected.put("out_channels", c.outChannels());
        expected.put("text_dim", c.textDim());
        expected.put("freq_dim", c.freqDim());
        for (Map.Entry<String, Integer> e : expected.entrySet()) {
            JsonNode v = root.get(e.getKey());
            if (v != null && v.isInt() && v.intValue() != e.getValue()) {
                throw new TensorFileException(file, e.getKey() + " is " + v.intValue() + " but configuration "
                        + c.name() + " has " + e.getValue() + "; pick the configuration of this checkpoint");
            }
        }
    }

    /**
     * Writes weights in the diffusers layout: one {@value #SINGLE}, or for {@code shards} > 1 that many files
     * "diffusion_pytorch_model-0000i-of-0000n.safetensors" of about equal size with their {@value #INDEX}.
     */
    public static void write(Path dir, WanWeights weights, int shards, DType dtype) {
        if (shards < 1) {
            throw new IllegalArgumentException("shards must be >= 1, got " + shards);
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new TensorFileException(dir, "cannot create the folder: " + e.getMessage(), e);
        }
        Map<String, FloatTensor> tensors = weights.tensors();
        if (shards == 1) {
            SafetensorsWriter.write(dir.resolve(SINGLE), named(tensors.entrySet().stream().toList(), dtype));
            return;
        }
        long total = 0;
        for (FloatTensor t : tensors.values()) {
            total += (long) t.size() * dtype.bytes();
        }
        List<List<Map.Entry<String, FloatTensor>>> groups = new ArrayList<>();
        long perShard = (total + shards - 1) / shards, filled = 0;
        for (Map.Entry<String, FloatTensor> e : tensors.entrySet()) {
            if (groups.isEmpty() || (filled >= perShard * groups.size() && groups.size() < shards)) {
                groups.add(new ArrayList<>());
            }
            groups.getLast().add(e);
            filled += (long) e.getValue().size() * dtype.bytes();
        }
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode index = mapper.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode map = index.putObject("weight_map");
        for (int i = 0; i < groups.size(); i++) {
            String file = String.format("diffusion_pytorch_model-%05d-of-%05d.safetensors", i + 1, groups.size());
            SafetensorsWriter.write(dir.resolve(file), named(groups.get(i), dtype));
            for (Map.Entry<String, FloatTensor> e : groups.get(i)) {
                map.put(e.getKey(), file);
            }
        }
        try {
            Files.writeString(dir.resolve(INDEX), mapper.writerWithDefaultPrettyPrinter().writeValueAsString(index));
        } catch (IOException e) {
            throw new TensorFileException(dir.resolve(INDEX), "cannot write: " + e.getMessage(), e);
        }
    }

    private static List<NamedTensor> named(List<Map.Entry<String, FloatTensor>> entries, DType dtype) {
        return entries.stream().map(e -> new NamedTensor(e.getKey(), e.getValue(), dtype)).toList();
    }
}
