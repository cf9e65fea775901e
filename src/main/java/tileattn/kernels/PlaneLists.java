package tileattn.kernels;

import tileattn.cuda.DeviceBuffer;

/**
 * A block-sparse forward's work in device memory when every (batch, head) pair is a plane with lists of its own,
 * as VSA writes them on the device: query blocks {rowStart, rowCount, slot, packing} of at most {@code blockRows}
 * rows, the KV list of (plane, slot) at {@code listOf[plane · slots + slot]}, its ranges from
 * {@code rangeOffsets[list]} to {@code rangeOffsets[list + 1]} in {@code ranges}. {@code members} (or null) holds
 * a byte per range for blocks that pack several tiles ({@link PackedTiles}).
 */
record PlaneLists(DeviceBuffer queryBlocks, int blockCount, int blockRows, DeviceBuffer listOf,
                  DeviceBuffer rangeOffsets, DeviceBuffer ranges, DeviceBuffer members, int slots) {
}
