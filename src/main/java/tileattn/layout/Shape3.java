package tileattn.layout;

/**
 * Three extents along time, height and width. Used for video shapes, tile shapes and tile grids alike;
 * a 2D image is T=1.
 */
public record Shape3(int t, int h, int w) {

    public Shape3 {
        if (t < 1 || h < 1 || w < 1) {
            throw new IllegalArgumentException("extents must be positive, got " + t + "x" + h + "x" + w);
        }
    }

    /** Parses "T,H,W" (also accepts 'x' as separator). */
    public static Shape3 parse(String text) {
        String[] parts = text.trim().split("[,xX]");
        if (parts.length != 3) {
            throw new IllegalArgumentException("expected three comma-separated integers T,H,W, got '" + text + "'");
        }
        try {
            return new Shape3(Integer.parseInt(parts[0].trim()), Integer.parseInt(parts[1].trim()),
                    Integer.parseInt(parts[2].trim()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("expected three comma-separated integers T,H,W, got '" + text + "'");
        }
    }

    public int volume() {
        return Math.multiplyExact(Math.multiplyExact(t, h), w);
    }

    public int get(int axis) {
        return switch (axis) {
            case 0 -> t;
            case 1 -> h;
            case 2 -> w;
            default -> throw new IndexOutOfBoundsException("axis " + axis);
        };
    }

    @Override
    public String toString() {
        return t + "x" + h + "x" + w;
    }
}
