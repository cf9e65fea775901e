package tileattn.search.picture;

import java.awt.Color;

/** A sequential colour scale from 0 to 1, interpolated in RGB between evenly spaced anchor colours. */
public enum Palette {

    /** Pale to deep blue: how much of the grid a window attends. */
    BLUES(new Color(0xF4F8FB), new Color(0xBBD7EA), new Color(0x6BAED6), new Color(0x2171B5), new Color(0x08306B)),
    /** Pale yellow through orange to dark red: errors. */
    HEAT(new Color(0xFFFBE0), new Color(0xFED976), new Color(0xFD8D3C), new Color(0xE31A1C), new Color(0x67000D));

    private final Color[] anchors;

    Palette(Color... anchors) {
        this.anchors = anchors;
    }

    public Color at(double x) {
        if (Double.isNaN(x)) {
            return Color.LIGHT_GRAY;
        }
        double p = Math.clamp(x, 0.0, 1.0) * (anchors.length - 1);
        int i = Math.min((int) p, anchors.length - 2);
        double f = p - i;
        Color a = anchors[i], b = anchors[i + 1];
        return new Color(mix(a.getRed(), b.getRed(), f), mix(a.getGreen(), b.getGreen(), f), mix(a.getBlue(), b.getBlue(), f));
    }

    private static int mix(int a, int b, double f) {
        return (int) Math.round(a + (b - a) * f);
    }

    /** Black or white, whichever reads better on the colour. */
    public static Color textOn(Color c) {
        double luminance = 0.299 * c.getRed() + 0.587 * c.getGreen() + 0.114 * c.getBlue();
        return luminance > 140 ? Color.BLACK : Color.WHITE;
    }
}
