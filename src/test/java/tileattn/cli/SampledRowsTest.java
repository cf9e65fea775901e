package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import tileattn.cpu.CpuAttention;
import tileattn.tensor.DType;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** The benchmark's float64 row check and its random inputs, against the CPU attention on a small case. */
class SampledRowsTest {

    private static FloatTensor toFloat(RandomHalfTensor t) {
        int[] shape = t.shape();
        FloatTensor f = FloatTensor.zeros(shape);
        int i = 0;
        for (int b = 0; b < shape[0]; b++) {
            for (int h = 0; h < shape[1]; h++) {
                for (int s = 0; s < shape[2]; s++) {
                    for (int c = 0; c < shape[3]; c++) {
                        f.data()[i++] = t.get(b, h, s, c);
                    }
                }
            }
        }
        return f;
    }

    @Test
    void randomTensorsAreReproducibleSpreadAndInRange() {
        try (Arena arena = Arena.ofShared()) {
            int[] shape = {1, 3, 1500, 64};
            RandomHalfTensor a = RandomHalfTensor.generate(arena, DType.BF16, shape, 5, -2, 2);
            RandomHalfTensor b = RandomHalfTensor.generate(arena, DType.BF16, shape, 5, -2, 2);
            RandomHalfTensor c = RandomHalfTensor.generate(arena, DType.BF16, shape, 6, -2, 2);
            assertEquals(-1, a.data().mismatch(b.data()), "same seed, same tensor");
            assertNotEquals(-1, a.data().mismatch(c.data()), "another seed, another tensor");
            float[] values = toFloat(a).data();
            double mean = 0, min = Double.MAX_VALUE, max = -Double.MAX_VALUE;
            for (float v : values) {
                mean += v / values.length;
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
            assertTrue(min >= -2 && max <= 2 && min < -1.99 && max > 1.99, min + " .. " + max);
            assertEquals(0, mean, 0.02);
            assertThrows(IllegalArgumentException.class,
                    () -> RandomHalfTensor.generate(arena, DType.F32, shape, 1, 0, 1));
        }
    }

    @Test
    void sampledRowsEqualTheCpuAttentionOnTheSameInputs() {
        TokenLayout layout = TokenLayout.of(new Shape3(5, 9, 11), new Shape3(2, 4, 4), 7);   // partial tiles, text
        int[] shape = {1, 2, layout.sequenceLength(), 64};
        float scale = CpuAttention.defaultScale(64);
        try (Arena arena = Arena.ofShared()) {
            RandomHalfTensor q = RandomHalfTensor.generate(arena, DType.F16, shape, 1, -2, 2);
            RandomHalfTensor k = RandomHalfTensor.generate(arena, DType.F16, shape, 2, -2, 2);
            RandomHalfTensor v = RandomHalfTensor.generate(arena, DType.F16, shape, 3, -1, 1);
            FloatTensor fq = toFloat(q), fk = toFloat(k), fv = toFloat(v);
            Window window = new Window(1, 3, 1);
            check(new SampledRows(q, k, v, layout, window, scale, 5, 9),
                    CpuAttention.sta(fq, fk, fv, layout, new Window[]{window, window}, scale), shape);
            check(new SampledRows(q, k, v, layout, null, scale, 5, 9), CpuAttention.dense(fq, fk, fv, scale), shape);
        }
    }

    private static void check(SampledRows sampled, FloatTensor cpu, int[] shape) {
        List<SampledRows.Row> rows = sampled.rows();
        int video = 5 * 9 * 11;
        assertTrue(rows.contains(new SampledRows.Row(1, video - 1)) && rows.contains(new SampledRows.Row(0, video))
                && rows.contains(new SampledRows.Row(1, shape[2] - 1)), "edge and text rows of both heads: " + rows);
        List<float[]> fromCpu = new ArrayList<>();
        for (int i = 0; i < rows.size(); i++) {
            SampledRows.Row row = rows.get(i);
            float[] values = new float[shape[3]];
            System.arraycopy(cpu.data(), (row.head() * shape[2] + row.row()) * shape[3], values, 0, shape[3]);
            fromCpu.add(values);
            double[] expected = sampled.expected(i);
            for (int c = 0; c < shape[3]; c++) {
                assertEquals(expected[c], values[c], 1e-5, "row " + row + " channel " + c);
            }
        }
        assertTrue(sampled.relativeL2(fromCpu) < 1e-5);
        fromCpu.getFirst()[3] = Float.NaN;
        assertTrue(Double.isNaN(sampled.relativeL2(fromCpu)), "a poisoned element fails the check");
    }
}
