package tileattn.search.picture;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.OptionalDouble;

/**
 * A PNG heat map of one value per (row, column), here layer × head, with axis labels, a colour bar and, when
 * the cells are large enough, each cell's own text.
 *
 * @param cellText text per cell (e.g. the window), or null
 * @param marker   a value to mark on the colour bar (e.g. the error budget), with {@code markerLabel}
 */
public record HeatMap(String title, String subtitle, String rowLabel, String columnLabel, String scaleLabel,
                      double[][] values, String[][] cellText, double min, double max, Palette palette,
                      OptionalDouble marker, String markerLabel) {

    public HeatMap {
        if (values.length == 0 || values[0].length == 0) {
            throw new IllegalArgumentException("a heat map needs at least one row and one column");
        }
        if (!(max > min)) {
            max = min + 1;
        }
    }

    public void write(Path file) throws IOException {
        int rows = values.length, cols = values[0].length;
        int cw = Math.clamp(720 / cols, 12, 72), ch = Math.clamp(560 / rows, 8, 40);
        boolean textFits = cellText != null && ch >= 14 && cw >= widestCellText() + 6;
        int left = 64, top = subtitle.isEmpty() ? 44 : 62, bottom = 48;
        int gridW = cols * cw, gridH = rows * ch;
        int barH = Math.max(gridH, 160), barW = 16, barGap = 24;
        int barLabelW = Math.max(Canvas.width(Canvas.SMALL, format(max)) + 8,
                marker.isPresent() ? Canvas.width(Canvas.SMALL, markerLabel) + 10 : 0);
        int width = Math.max(left + gridW + barGap + barW + barLabelW + 36,
                Math.max(Canvas.width(Canvas.TITLE, title), Canvas.width(Canvas.LABEL, subtitle)) + 24);
        int height = top + Math.max(gridH, barH) + bottom;
        Canvas c = new Canvas(width, height);

        c.text(title, Canvas.TITLE, Color.BLACK, 12, 22);
        if (!subtitle.isEmpty()) {
            c.text(subtitle, Canvas.LABEL, Color.DARK_GRAY, 12, 42);
        }
        for (int r = 0; r < rows; r++) {
            for (int col = 0; col < cols; col++) {
                Color fill = palette.at((values[r][col] - min) / (max - min));
                int x = left + col * cw, y = top + r * ch;
                c.g.setColor(fill);
                c.g.fillRect(x, y, cw, ch);
                if (textFits && cellText[r][col] != null) {
                    c.centred(cellText[r][col], Canvas.SMALL, Palette.textOn(fill), x + cw / 2, y + ch / 2 + 4);
                }
            }
        }
        c.g.setColor(Color.GRAY);
        c.g.drawRect(left, top, gridW, gridH);
        if (cw >= 10 && ch >= 10) {
            c.g.setColor(new Color(255, 255, 255, 120));
            for (int col = 1; col < cols; col++) {
                c.g.drawLine(left + col * cw, top, left + col * cw, top + gridH);
            }
            for (int r = 1; r < rows; r++) {
                c.g.drawLine(left, top + r * ch, left + gridW, top + r * ch);
            }
        }

        int rowStep = tickStep(16.0 / ch), colStep = tickStep((Canvas.width(Canvas.SMALL, String.valueOf(cols - 1)) + 6.0) / cw);
        for (int r = 0; r < rows; r += rowStep) {
            c.right(String.valueOf(r), Canvas.SMALL, Color.BLACK, left - 5, top + r * ch + ch / 2 + 4);
        }
        for (int col = 0; col < cols; col += colStep) {
            c.centred(String.valueOf(col), Canvas.SMALL, Color.BLACK, left + col * cw + cw / 2, top + gridH + 14);
        }
        c.vertical(rowLabel, Canvas.LABEL, Color.BLACK, 18, top + gridH / 2);
        c.centred(columnLabel, Canvas.LABEL, Color.BLACK, left + gridW / 2, top + gridH + 34);

        int bx = left + gridW + barGap, by = top;
        for (int i = 0; i < barH; i++) {
            c.g.setColor(palette.at(1.0 - (double) i / (barH - 1)));
            c.g.fillRect(bx, by + i, barW, 1);
        }
        c.g.setColor(Color.GRAY);
        c.g.drawRect(bx, by, barW, barH);
        int markerY = Integer.MIN_VALUE;
        if (marker.isPresent() && marker.getAsDouble() >= min && marker.getAsDouble() <= max) {
            markerY = by + barH - (int) Math.round(barH * (marker.getAsDouble() - min) / (max - min));
            c.g.setColor(Color.BLACK);
            c.g.fillRect(bx - 4, markerY - 1, barW + 8, 3);
            c.text(markerLabel, Canvas.SMALL, Color.BLACK, bx + barW + 6, markerY + 4);
        }
        for (double v : ticks(min, max)) {
            int y = by + barH - (int) Math.round(barH * (v - min) / (max - min));
            c.g.setColor(Color.BLACK);
            c.g.drawLine(bx + barW, y, bx + barW + 3, y);
            if (Math.abs(y - markerY) >= 12) {
                c.text(format(v), Canvas.SMALL, Color.BLACK, bx + barW + 6, y + 4);
            }
        }
        c.vertical(scaleLabel, Canvas.LABEL, Color.BLACK, bx + barW + barLabelW + 22, by + barH / 2);
        c.save(file);
    }

    private int widestCellText() {
        int widest = 0;
        for (String[] row : cellText) {
            for (String s : row) {
                if (s != null) {
                    widest = Math.max(widest, Canvas.width(Canvas.SMALL, s));
                }
            }
        }
        return widest;
    }

    /** Round values from min to max, 3 to 6 of them, at a step of 1, 2, 2.5 or 5 times a power of ten. */
    static double[] ticks(double min, double max) {
        double span = max - min;
        double magnitude = Math.pow(10, Math.floor(Math.log10(span)));
        double step = magnitude;
        for (double m : new double[]{0.2, 0.25, 0.5, 1, 2, 2.5, 5}) {
            if (span / (m * magnitude) <= 5) {
                step = m * magnitude;
                break;
            }
        }
        double first = Math.ceil(min / step - 1e-9) * step;
        int n = (int) Math.floor((max - first) / step + 1e-9) + 1;
        double[] ticks = new double[n];
        for (int i = 0; i < n; i++) {
            ticks[i] = first + i * step;
        }
        return ticks;
    }

    /** The smallest of 1, 2, 5, 10, 20, 50, ... that is at least {@code needed}. */
    private static int tickStep(double needed) {
        for (int scale = 1; ; scale *= 10) {
            for (int m : new int[]{1, 2, 5}) {
                if (m * scale >= needed) {
                    return m * scale;
                }
            }
        }
    }

    static String format(double v) {
        if (v == 0) {
            return "0";
        }
        double a = Math.abs(v);
        if (a >= 100) {
            return String.format(Locale.ROOT, "%.0f", v);
        }
        if (a >= 0.001) {
            return String.format(Locale.ROOT, "%.4f", v).replaceAll("0+$", "").replaceAll("\\.$", "");
        }
        return String.format(Locale.ROOT, "%.1e", v);
    }
}
