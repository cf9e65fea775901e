package tileattn.cuda;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;

import org.junit.jupiter.api.Test;

import tileattn.tensor.DType;

/** The arguments a tensor map refuses before the driver is asked, so they fail the same way with or without a GPU. */
class TensorMapTest {

    private static void assertRefused(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
    }

    @Test
    void refusesWhatTheCopyEngineCannotRead() {
        try (Arena arena = Arena.ofConfined()) {
            assertRefused("BF16 or F16", () -> TensorMap.rows16(0x1000, DType.F32, 64, 128, 128, arena));
            assertRefused("16-byte aligned", () -> TensorMap.rows16(0x1008, DType.BF16, 64, 128, 128, arena));
            assertRefused("multiple of 64", () -> TensorMap.rows16(0x1000, DType.BF16, 64, 96, 128, arena));
            assertRefused("rows between", () -> TensorMap.rows16(0x1000, DType.F16, 0, 128, 128, arena));
            assertRefused("box rows", () -> TensorMap.rows16(0x1000, DType.BF16, 64, 128, 257, arena));
        }
    }
}
