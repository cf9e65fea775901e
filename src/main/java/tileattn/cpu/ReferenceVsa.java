package tileattn.cpu;

import tileattn.tensor.FloatTensor;

/**
 * The literal VSA computation of {@link ReferenceAttention#vsa}, computed in double and rounded once to fp32.
 * Token tensors are in raster order.
 *
 * @param selectedTiles per (plane, query tile), indexed (batch·heads + head)·tiles + tile: the kept KV tiles, ascending
 * @param coarseScores per plane: the scaled coarse scores, [query tile · tiles + key tile]
 */
public record ReferenceVsa(FloatTensor out, FloatTensor coarse, FloatTensor fine, int[][] selectedTiles,
        double[][] coarseScores) {
}
