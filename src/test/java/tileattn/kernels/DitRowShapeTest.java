package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Which vector row kernel (warps per row, chunks per lane) each width gets; dit.cu instantiates exactly these. */
class DitRowShapeTest {

    @Test
    void wanWidthsTakeTheVectorKernels() {
        assertEquals(new DitKernels.RowShape(1, 6), DitKernels.RowShape.of(1536));   // Wan 1.3B
        assertEquals(new DitKernels.RowShape(4, 5), DitKernels.RowShape.of(5120));   // Wan 14B
        assertEquals(new DitKernels.RowShape(1, 1), DitKernels.RowShape.of(128));
        assertEquals("_w1c6", DitKernels.RowShape.of(1536).suffix());
    }

    @Test
    void everyWidthUpToTheLimitMapsToAnInstantiatedShape() {
        for (int width = 8; width <= DitKernels.MAX_VECTOR_WIDTH; width += 8) {
            DitKernels.RowShape shape = DitKernels.RowShape.of(width);
            assertNotNull(shape, "width " + width);
            int lanes = 32 * shape.warps();
            assertTrue(shape.chunksPerLane() * lanes * 8 >= width, "width " + width + " fits " + shape);
            assertTrue((shape.chunksPerLane() - 1) * lanes * 8 < width, "no idle chunk per lane at width " + width);
            boolean instantiated = shape.warps() == 1 ? shape.chunksPerLane() >= 1 && shape.chunksPerLane() <= 8
                    : shape.warps() == 4 && shape.chunksPerLane() >= 3 && shape.chunksPerLane() <= 8;
            assertTrue(instantiated, "dit.cu has no kernel for " + shape + " (width " + width + ")");
        }
    }

    @Test
    void theFatbinHasEveryVectorKernelTheWrapperNames() throws IOException {
        byte[] fatbin;
        try (InputStream in = DitKernels.class.getResourceAsStream("/tileattn/kernels/dit.fatbin")) {
            Assumptions.assumeTrue(in != null, "built without nvcc: no dit.fatbin");
            fatbin = in.readAllBytes();
        }
        String text = new String(fatbin, StandardCharsets.ISO_8859_1);
        Set<String> suffixes = new TreeSet<>();
        for (int width = 8; width <= DitKernels.MAX_VECTOR_WIDTH; width += 8) {
            suffixes.add(DitKernels.RowShape.of(width).suffix());
        }
        assertEquals(14, suffixes.size(), suffixes.toString());
        for (String suffix : suffixes) {
            for (String kernel : new String[]{"tileattn_dit_residual_norm", "tileattn_dit_to_heads"}) {
                assertTrue(text.contains(kernel + suffix + "\0"), kernel + suffix + " missing from dit.fatbin");
            }
        }
    }

    @Test
    void otherWidthsFallBackToTheGenericKernels() {
        assertNull(DitKernels.RowShape.of(300));   // not a multiple of 8
        assertNull(DitKernels.RowShape.of(DitKernels.MAX_VECTOR_WIDTH + 8));
    }
}
