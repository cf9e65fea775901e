package tileattn.tensor;

/** A tensor with the name and on-disk dtype it is written under. */
public record NamedTensor(String name, FloatTensor tensor, DType dtype) {

    public NamedTensor {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("tensor name must not be empty");
        }
        if (name.equals(SafetensorsFile.METADATA_KEY)) {
            throw new IllegalArgumentException("'" + name + "' is reserved for metadata and cannot name a tensor");
        }
    }
}
