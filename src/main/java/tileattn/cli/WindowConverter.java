package tileattn.cli;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;
import tileattn.mask.Window;

/** Parses an STA window "a,b,c" in tiles. */
final class WindowConverter implements ITypeConverter<Window> {

    @Override
    public Window convert(String value) {
        try {
            return Window.parse(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
    }
}
