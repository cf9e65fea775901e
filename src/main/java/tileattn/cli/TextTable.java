package tileattn.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

/** A plain-text table with columns padded to their widest cell; numeric columns right-aligned. */
final class TextTable {

    private final List<String> header;
    private final List<List<String>> rows = new ArrayList<>();

    TextTable(String... header) {
        this.header = List.of(header);
    }

    void add(Object... cells) {
        if (cells.length != header.size()) {
            throw new IllegalArgumentException("row has " + cells.length + " cells, table has " + header.size());
        }
        List<String> row = new ArrayList<>();
        for (Object c : cells) {
            row.add(String.valueOf(c));
        }
        rows.add(row);
    }

    void print(PrintWriter out) {
        int[] widths = new int[header.size()];
        for (int c = 0; c < widths.length; c++) {
            widths[c] = header.get(c).length();
            for (List<String> row : rows) {
                widths[c] = Math.max(widths[c], row.get(c).length());
            }
        }
        boolean[] numeric = new boolean[widths.length];
        for (int c = 0; c < widths.length; c++) {
            final int col = c;
            numeric[c] = !rows.isEmpty() && rows.stream().allMatch(r -> isNumeric(r.get(col)));
        }
        printRow(out, header, widths, numeric);
        StringBuilder rule = new StringBuilder();
        for (int c = 0; c < widths.length; c++) {
            rule.append(c == 0 ? "" : "  ").append("-".repeat(widths[c]));
        }
        out.println(rule);
        for (List<String> row : rows) {
            printRow(out, row, widths, numeric);
        }
        out.flush();
    }

    /** The same table as GitHub markdown, for docs. */
    void printMarkdown(PrintWriter out) {
        out.println("| " + String.join(" | ", header) + " |");
        out.println("|" + "---|".repeat(header.size()));
        for (List<String> row : rows) {
            out.println("| " + String.join(" | ", row) + " |");
        }
        out.flush();
    }

    private static void printRow(PrintWriter out, List<String> cells, int[] widths, boolean[] numeric) {
        StringBuilder line = new StringBuilder();
        for (int c = 0; c < widths.length; c++) {
            String cell = cells.get(c);
            String pad = " ".repeat(widths[c] - cell.length());
            line.append(c == 0 ? "" : "  ").append(numeric[c] ? pad + cell : cell + pad);
        }
        out.println(line.toString().stripTrailing());
    }

    /** Numbers, percentages, ratios ("1.5x") and "n/a" count as numeric and are right-aligned. */
    private static boolean isNumeric(String cell) {
        return cell.equals("n/a") || cell.matches("[-+]?[0-9.,]+(e[-+]?[0-9]+)?[x%]?");
    }
}
