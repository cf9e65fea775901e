package tileattn.cpu;

import tileattn.mask.TileLists;
import tileattn.tensor.FloatTensor;

/**
 * Everything a VSA forward pass computes, kept for the backward pass. Token tensors are [B, heads, S, d] in tile
 * order; tile tensors are [B, heads, tiles, d].
 *
 * @param out coarse × gate + fine
 * @param coarse the coarse output copied to every token of its query tile (before the gate)
 * @param fine attention of each token over the tokens of its query tile's selected KV tiles
 * @param selection per (batch, head), indexed batch·heads + head: the top-k KV tiles of each query tile, ascending
 * @param pooledQ mean of q over each tile's real tokens (likewise pooledK, pooledV)
 * @param coarseTiles softmax(pooledQ · pooledKᵀ × scale) · pooledV, one row per query tile
 * @param coarseLse log-sum-exp of the scaled coarse scores per query tile, [B, heads, tiles]
 * @param fineLse log-sum-exp of the scaled fine scores per token, [B, heads, S]
 */
public record VsaForward(FloatTensor out, FloatTensor coarse, FloatTensor fine, TileLists[] selection,
        FloatTensor pooledQ, FloatTensor pooledK, FloatTensor pooledV, FloatTensor coarseTiles, FloatTensor coarseLse,
        FloatTensor fineLse) {
}
