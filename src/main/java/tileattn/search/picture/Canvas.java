package tileattn.search.picture;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/** A white image to draw on with text helpers, written as PNG. Works without a display. */
final class Canvas {

    static {
        System.setProperty("java.awt.headless", "true");
    }

    static final Font TITLE = new Font(Font.SANS_SERIF, Font.BOLD, 15);
    static final Font LABEL = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
    static final Font SMALL = new Font(Font.SANS_SERIF, Font.PLAIN, 10);

    final BufferedImage image;
    final Graphics2D g;

    Canvas(int width, int height) {
        image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
    }

    /** Width of a text in a font, for layout before drawing. */
    static int width(Font font, String text) {
        Canvas probe = Probe.INSTANCE;
        return probe.g.getFontMetrics(font).stringWidth(text);
    }

    private static final class Probe {
        static final Canvas INSTANCE = new Canvas(1, 1);
    }

    void text(String text, Font font, Color color, int x, int y) {
        g.setFont(font);
        g.setColor(color);
        g.drawString(text, x, y);
    }

    /** Draws text centred on x with its baseline at y. */
    void centred(String text, Font font, Color color, int x, int y) {
        FontMetrics m = g.getFontMetrics(font);
        text(text, font, color, x - m.stringWidth(text) / 2, y);
    }

    /** Draws text right-aligned to x. */
    void right(String text, Font font, Color color, int x, int y) {
        FontMetrics m = g.getFontMetrics(font);
        text(text, font, color, x - m.stringWidth(text), y);
    }

    /** Draws text rotated a quarter turn counter-clockwise, centred on (x, y). */
    void vertical(String text, Font font, Color color, int x, int y) {
        AffineTransform saved = g.getTransform();
        g.translate(x, y);
        g.rotate(-Math.PI / 2);
        centred(text, font, color, 0, 0);
        g.setTransform(saved);
    }

    void save(Path file) throws IOException {
        g.dispose();
        if (!ImageIO.write(image, "png", file.toFile())) {
            throw new IOException("no PNG writer available to write " + file);
        }
    }
}
