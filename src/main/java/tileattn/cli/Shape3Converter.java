package tileattn.cli;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;
import tileattn.layout.Shape3;

/** Parses "T,H,W" options; a malformed value becomes picocli's usage error naming the option. */
final class Shape3Converter implements ITypeConverter<Shape3> {

    @Override
    public Shape3 convert(String value) {
        try {
            return Shape3.parse(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
    }
}
