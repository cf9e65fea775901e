package tileattn.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The parameters of one kernel launch, in the order of the kernel's signature. Each must have the C type the
 * kernel declares: {@link #pointer} for {@code T*}, {@link #i32} for {@code int}/{@code unsigned}, {@link #i64}
 * for {@code long long}/{@code size_t}, {@link #f32} for {@code float}, {@link #struct} for a struct passed by
 * value (e.g. a 128-byte CUtensorMap, alignment 64). cuLaunchKernel copies the values at launch, so a KernelArgs
 * may be reused and changed between launches.
 */
public final class KernelArgs {

    private record Arg(long size, long alignment, long bits, MemorySegment bytes) {
    }

    private final List<Arg> args = new ArrayList<>();

    public static KernelArgs of() {
        return new KernelArgs();
    }

    public KernelArgs pointer(DeviceBuffer buffer) {
        return i64(buffer.address());
    }

    public KernelArgs pointer(DeviceTensor tensor) {
        return pointer(tensor.buffer());
    }

    public KernelArgs i32(int value) {
        args.add(new Arg(4, 4, value, null));
        return this;
    }

    public KernelArgs i64(long value) {
        args.add(new Arg(8, 8, value, null));
        return this;
    }

    public KernelArgs f32(float value) {
        args.add(new Arg(4, 4, Float.floatToRawIntBits(value), null));
        return this;
    }

    /** A by-value struct; its bytes are copied now. */
    public KernelArgs struct(MemorySegment value, long alignment) {
        if (Long.bitCount(alignment) != 1) {
            throw new IllegalArgumentException("alignment must be a power of two, got " + alignment);
        }
        byte[] copy = value.toArray(ValueLayout.JAVA_BYTE);
        args.add(new Arg(copy.length, alignment, 0, MemorySegment.ofArray(copy)));
        return this;
    }

    public int size() {
        return args.size();
    }

    /** The {@code void**} array cuLaunchKernel takes, allocated in {@code arena}. */
    MemorySegment pack(Arena arena) {
        MemorySegment pointers = arena.allocate(ValueLayout.ADDRESS, Math.max(1, args.size()));
        for (int i = 0; i < args.size(); i++) {
            Arg arg = args.get(i);
            MemorySegment slot = arena.allocate(arg.size, arg.alignment);
            if (arg.bytes != null) {
                slot.copyFrom(arg.bytes);
            } else if (arg.size == 8) {
                slot.set(ValueLayout.JAVA_LONG, 0, arg.bits);
            } else {
                slot.set(ValueLayout.JAVA_INT, 0, (int) arg.bits);
            }
            pointers.setAtIndex(ValueLayout.ADDRESS, i, slot);
        }
        return pointers;
    }
}
