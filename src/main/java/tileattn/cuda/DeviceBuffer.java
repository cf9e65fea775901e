package tileattn.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A range of device memory owned by a {@link DeviceScope}; valid until the scope closes. Copies to and from the
 * host take native {@link MemorySegment}s (pinned ones from {@link DeviceScope#allocatePinned} for asynchronous
 * copies that overlap other work) or Java arrays for convenience; a copy moves exactly the host side's size.
 */
public final class DeviceBuffer {

    private final DeviceScope scope;
    private final long address;
    private final long bytes;

    DeviceBuffer(DeviceScope scope, long address, long bytes) {
        this.scope = scope;
        this.address = address;
        this.bytes = bytes;
    }

    /** The CUdeviceptr; throws if the owning scope was closed. */
    public long address() {
        scope.checkOpen();
        return address;
    }

    public long bytes() {
        return bytes;
    }

    public DeviceScope scope() {
        return scope;
    }

    /** A view of {@code length} bytes from {@code offset}, owned by the same scope. */
    public DeviceBuffer slice(long offset, long length) {
        if (offset < 0 || length < 0 || offset + length > bytes) {
            throw new IndexOutOfBoundsException("slice [" + offset + ", " + (offset + length) + ") outside a buffer of " + bytes + " bytes");
        }
        return new DeviceBuffer(scope, address + offset, length);
    }

    /** Whether the two byte ranges share any byte. */
    public boolean overlaps(DeviceBuffer other) {
        return bytes > 0 && other.bytes > 0 && address < other.address + other.bytes && other.address < address + bytes;
    }

    private CudaDriver bind() {
        scope.checkOpen();
        scope.context().makeCurrent();
        return scope.context().driver();
    }

    private void checkHostSize(MemorySegment host) {
        if (!host.isNative()) {
            throw new IllegalArgumentException("host memory for CUDA copies must be native (off-heap), not a heap segment");
        }
        if (host.byteSize() > bytes) {
            throw new IllegalArgumentException("host segment of " + host.byteSize() + " bytes does not fit a device buffer of " + bytes + " bytes");
        }
    }

    private void checkDeviceSource(DeviceBuffer src) {
        if (src.bytes > bytes) {
            throw new IllegalArgumentException("device source of " + src.bytes + " bytes does not fit a device buffer of " + bytes + " bytes");
        }
    }

    /** Copies {@code src.byteSize()} bytes from the host to the start of this buffer; returns when done. */
    public void copyFromHost(MemorySegment src) {
        checkHostSize(src);
        if (src.byteSize() > 0) {
            bind().memcpyHtoD(address, src, src.byteSize());
        }
    }

    /** Copies {@code dst.byteSize()} bytes from the start of this buffer to the host; returns when done. */
    public void copyToHost(MemorySegment dst) {
        checkHostSize(dst);
        if (dst.byteSize() > 0) {
            bind().memcpyDtoH(dst, address, dst.byteSize());
        }
    }

    /** Queues a host-to-device copy on a stream; {@code src} must stay untouched until the stream reaches it. */
    public void copyFromHostAsync(MemorySegment src, CudaStream stream) {
        checkHostSize(src);
        if (src.byteSize() > 0) {
            bind().memcpyHtoDAsync(address, src, src.byteSize(), stream.handle());
        }
    }

    /** Queues a device-to-host copy on a stream; {@code dst} holds the data once the stream has reached it. */
    public void copyToHostAsync(MemorySegment dst, CudaStream stream) {
        checkHostSize(dst);
        if (dst.byteSize() > 0) {
            bind().memcpyDtoHAsync(dst, address, dst.byteSize(), stream.handle());
        }
    }

    /** Copies all of {@code src} to the start of this buffer. */
    public void copyFrom(DeviceBuffer src) {
        checkDeviceSource(src);
        if (src.bytes > 0) {
            bind().memcpyDtoD(address, src.address(), src.bytes);
        }
    }

    public void copyFromAsync(DeviceBuffer src, CudaStream stream) {
        checkDeviceSource(src);
        if (src.bytes > 0) {
            bind().memcpyDtoDAsync(address, src.address(), src.bytes, stream.handle());
        }
    }

    /** Sets every byte. */
    public void fill(byte value) {
        if (bytes > 0) {
            bind().memsetD8(address, value, bytes);
        }
    }

    public void fillAsync(byte value, CudaStream stream) {
        if (bytes > 0) {
            bind().memsetD8Async(address, value, bytes, stream.handle());
        }
    }

    /** Sets every 32-bit word (the buffer must be a whole number of 4-byte aligned words). */
    public void fill(int value) {
        checkWords();
        if (bytes > 0) {
            bind().memsetD32(address, value, bytes / 4);
        }
    }

    public void fillAsync(int value, CudaStream stream) {
        checkWords();
        if (bytes > 0) {
            bind().memsetD32Async(address, value, bytes / 4, stream.handle());
        }
    }

    private void checkWords() {
        if (bytes % 4 != 0 || address % 4 != 0) {
            throw new IllegalArgumentException("32-bit fill needs a 4-byte aligned buffer of whole words; this one has "
                    + bytes + " bytes at offset " + (address % 4) + " mod 4");
        }
    }

    // Java array conveniences: they stage through a temporary native copy.

    public void copyFromHost(float[] src) {
        try (Arena arena = Arena.ofConfined()) {
            copyFromHost(arena.allocateFrom(ValueLayout.JAVA_FLOAT, src));
        }
    }

    public void copyToHost(float[] dst) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment tmp = arena.allocate(ValueLayout.JAVA_FLOAT, dst.length);
            copyToHost(tmp);
            MemorySegment.copy(tmp, ValueLayout.JAVA_FLOAT, 0, dst, 0, dst.length);
        }
    }

    public void copyFromHost(short[] src) {
        try (Arena arena = Arena.ofConfined()) {
            copyFromHost(arena.allocateFrom(ValueLayout.JAVA_SHORT, src));
        }
    }

    public void copyToHost(short[] dst) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment tmp = arena.allocate(ValueLayout.JAVA_SHORT, dst.length);
            copyToHost(tmp);
            MemorySegment.copy(tmp, ValueLayout.JAVA_SHORT, 0, dst, 0, dst.length);
        }
    }

    public void copyFromHost(int[] src) {
        try (Arena arena = Arena.ofConfined()) {
            copyFromHost(arena.allocateFrom(ValueLayout.JAVA_INT, src));
        }
    }

    public void copyToHost(int[] dst) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment tmp = arena.allocate(ValueLayout.JAVA_INT, dst.length);
            copyToHost(tmp);
            MemorySegment.copy(tmp, ValueLayout.JAVA_INT, 0, dst, 0, dst.length);
        }
    }

    @Override
    public String toString() {
        return "DeviceBuffer[0x" + Long.toHexString(address) + ", " + bytes + " bytes]";
    }
}
