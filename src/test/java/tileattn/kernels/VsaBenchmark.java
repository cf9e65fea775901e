package tileattn.kernels;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.TileLists;
import tileattn.tensor.FloatTensor;

/**
 * Not a test: times VSA on the GPU at Wan-2.1 1.3B 480p (video 21×30×52 and its padded 24×32×52, 12 heads, d = 128,
 * bf16, tiles 4×4×4, 87.5% sparsity) for each fine-kernel variant, step by step and as a whole (median of
 * event-timed repetitions after warm-ups), checks sampled output rows against a float64 computation on the host,
 * and writes batch 0's selection for the FlexAttention peer (scripts/peers_vsa.py). Run on the device with the
 * bundle of scripts/device-build.sh:
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp test-classes:tileattn.jar tileattn.kernels.VsaBenchmark OUT_DIR [quick]}
 * ("quick": only the variant VsaKernels picks on Hopper, wgmma with 64-row blocks). The last kernel at its first
 * block size (wgmma BM64 on Hopper) is timed with both backward block sizes ("/b64", "/b128"); the others with
 * the backward's default (64 rows on these tiles). Random inputs favour partial tiles (their means average fewer
 * tokens, so their pooled keys are longer), so at 21×30×52 the selection holds fewer keys than a DiT's (column
 * keys/q: 3,321 of 4,992 for whole tiles); 24×32×52 has whole tiles only.
 */
public final class VsaBenchmark {

    private static final int WARMUPS = 3;
    private static final int REPS = 20;
    private static final int HEADS = 12;
    private static final int D = 128;
    private static final double SPARSITY = 0.875;
    private static final int SAMPLED_TILES = 4;

    private interface Work {
        void run(CudaStream stream);
    }

    private static double medianMillis(DeviceScope scope, CudaStream stream, Work work) {
        CudaEvent start = scope.createEvent();
        CudaEvent end = scope.createEvent();
        for (int i = 0; i < WARMUPS; i++) {
            work.run(stream);
        }
        double[] ms = new double[REPS];
        for (int i = 0; i < REPS; i++) {
            start.record(stream);
            work.run(stream);
            end.record(stream);
            ms[i] = CudaEvent.elapsedMillis(start, end);
        }
        Arrays.sort(ms);
        return ms[REPS / 2];
    }

    private record Row(String video, int seq, String variant, double pool, double coarse, double fine, double combine,
                       double forward, double fineBackward, double coarseBackward, double backward,
                       double forwardBackward, double pairs, double sampleError) {
    }

    public static void main(String[] args) {
        Path outDir = Path.of(args.length > 0 ? args[0] : System.getProperty("java.io.tmpdir"));
        boolean quick = args.length > 1 && args[1].equals("quick");  // the default variant only: wgmma BM64 on Hopper
        List<Row> rows = new ArrayList<>();
        try (CudaContext context = CudaContext.primary(0)) {
            KernelLibrary library = KernelLibrary.of(context);
            System.out.println("device: " + context.device().name());
            for (Shape3 video : new Shape3[]{new Shape3(21, 30, 52), new Shape3(24, 32, 52)}) {
                rows.addAll(measure(context, library, video, outDir, quick));
            }
        }
        System.out.println();
        System.out.println("VSA on the GPU, B=1, 12 heads, d=128, bf16, tile 4x4x4, 87.5% sparse; ms, median of " + REPS);
        System.out.printf(Locale.ROOT, "%-16s %-16s %6s %6s %6s %6s %7s %6s | %6s %6s %7s | %7s %6s | %7s %8s%n",
                "video", "fine kernel", "pool", "coarse", "fine", "comb", "fwd", "TF/s", "f.bwd", "c.bwd", "bwd",
                "fwd+bwd", "TF/s", "keys/q", "rel.err");
        for (Row r : rows) {
            double flops = 4.0 * r.pairs * D;
            System.out.printf(Locale.ROOT, "%-16s %-16s %6.3f %6.3f %6.3f %6.3f %7.3f %6.0f | %6.3f %6.3f %7.3f | %7.3f %6.0f | %7.0f %8.1e%n",
                    r.video, r.variant, r.pool, r.coarse, r.fine, r.combine, r.forward, flops / r.forward / 1e9,
                    r.fineBackward, r.coarseBackward, r.backward, r.forwardBackward, 3.5 * flops / r.forwardBackward / 1e9,
                    r.pairs / HEADS / r.seq, r.sampleError);
        }
        System.out.println("(f.bwd: the fine branch's backward with the selection's transpose; c.bwd: the coarse branch's,"
                + " dgate and the pooled gradients' per-token shares, which the fine backward adds to dq, dk, dv;"
                + " TF/s: 4 * heads * sum of attended keys * d / time, fwd+bwd 3.5 times that)");
    }

    private static List<Row> measure(CudaContext context, KernelLibrary library, Shape3 video, Path outDir,
                                     boolean quick) {
        TileGrid grid = new TileGrid(video, new Shape3(4, 4, 4));
        int tiles = grid.tileCount(), seq = grid.videoTokens();
        int topK = VsaKernels.topKFromSparsity(SPARSITY, tiles);
        int[] shape = {1, HEADS, seq, D};
        float scale = (float) (1 / Math.sqrt(D));
        String name = video.t() + "x" + video.h() + "x" + video.w() + " S=" + seq;
        System.out.println(name + ": " + tiles + " tiles, k = " + topK);
        Random rnd = new Random(seq);
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape), gate = random(rnd, shape),
                dOut = random(rnd, shape);

        List<VsaKernels> kernels = new ArrayList<>();
        if (!quick || context.device().computeCapabilityNumber() != 90) {
            kernels.add(new VsaKernels(library, TileAttentionKernel.Path.PORTABLE));
        }
        if (context.device().computeCapabilityNumber() == 90) {
            kernels.add(new VsaKernels(library, TileAttentionKernel.Path.HOPPER));
        }
        List<Row> rows = new ArrayList<>();
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor dq = DeviceTensor.upload(scope, q, DType.BF16), dk = DeviceTensor.upload(scope, k, DType.BF16),
                    dv = DeviceTensor.upload(scope, v, DType.BF16), dg = DeviceTensor.upload(scope, gate, DType.BF16),
                    dO = DeviceTensor.upload(scope, dOut, DType.BF16);
            DeviceTensor out = scope.allocateTensor(DType.BF16, shape);
            DeviceTensor gq = scope.allocateTensor(DType.BF16, shape), gk = scope.allocateTensor(DType.BF16, shape),
                    gv = scope.allocateTensor(DType.BF16, shape), gg = scope.allocateTensor(DType.BF16, shape);
            for (VsaKernels vsa : kernels) {
                int[] blockRows = vsa.path() != TileAttentionKernel.Path.HOPPER ? new int[]{128}
                        : quick ? new int[]{64} : new int[]{64, 128};
                for (int rowsPerBlock : blockRows) for (int backwardRows : vsa == kernels.get(kernels.size() - 1)
                        && rowsPerBlock == blockRows[0] ? new int[]{64, 128} : new int[]{0}) {
                    String variant = (vsa.path() == TileAttentionKernel.Path.HOPPER ? "wgmma" : "mma.sync") + " BM" + rowsPerBlock
                            + (backwardRows == 0 ? "" : "/b" + backwardRows);
                    VsaPlan plan = backwardRows == 0 ? vsa.plan(grid, 1, HEADS, topK, rowsPerBlock, scope)
                            : vsa.plan(grid, 1, HEADS, topK, rowsPerBlock, backwardRows, scope);
                    VsaWorkspace ws = VsaWorkspace.allocate(plan, DType.BF16, D, true, scope);
                    out.buffer().fill((byte) 0xFF);
                    vsa.forward(dq, dk, dv, dg, out, ws, scale, stream);
                    stream.synchronize();
                    TileLists[] selection = ws.downloadSelection();
                    double pairs = attendedPairs(selection, grid);
                    double error = sampledError(q, k, v, gate, out.download(), selection[0], grid, topK, scale);
                    String unwritten = "";
                    if (backwardRows != 0 || (rowsPerBlock == blockRows[0] && vsa == kernels.get(0))) {
                        gq.buffer().fill((byte) 0xFF);
                        gv.buffer().fill((byte) 0xFF);
                        vsa.backward(dq, dk, dv, dg, dO, gq, gk, gv, gg, ws, scale, stream);
                        stream.synchronize();
                        unwritten = ", non-finite dq/dv elements: " + nonFinite(gq.download()) + "/" + nonFinite(gv.download());
                    }
                    if (rows.isEmpty()) {
                        writeSelection(outDir.resolve("vsa_selection_S" + seq + "_h" + HEADS + "_t" + tiles + "_k" + topK + ".bin"),
                                selection, tiles, topK);
                    }
                    double pool = medianMillis(scope, stream, s -> vsa.pool(dq, dk, dv, ws, true, s));
                    double coarse = medianMillis(scope, stream, s -> vsa.coarse(ws, scale, true, s));
                    double fine = medianMillis(scope, stream, s -> vsa.fine(dq, dk, dv, ws, scale, s));
                    double combine = medianMillis(scope, stream, s -> vsa.combine(dg, out, ws, s));
                    double forward = medianMillis(scope, stream, s -> vsa.forward(dq, dk, dv, dg, out, ws, scale, s));
                    double fineBackward = medianMillis(scope, stream, s -> vsa.fineBackward(dq, dk, dv, dO, gq, gk, gv, ws, scale, s));
                    double coarseBackward = medianMillis(scope, stream, s -> vsa.coarseBackward(dg, dO, gg, ws, scale, s));
                    double backward = medianMillis(scope, stream, s -> vsa.backward(dq, dk, dv, dg, dO, gq, gk, gv, gg, ws, scale, s));
                    double forwardBackward = medianMillis(scope, stream, s -> {
                        vsa.forward(dq, dk, dv, dg, out, ws, scale, s);
                        vsa.backward(dq, dk, dv, dg, dO, gq, gk, gv, gg, ws, scale, s);
                    });
                    if (backwardRows == 64 && vsa.path() == TileAttentionKernel.Path.HOPPER) {
                        // The other block size of the coarse backward on the same workspace: 64-tile blocks leave
                        // SMs idle at 624 tiles and 12 heads (120 blocks), 32-tile ones recompute more per tile.
                        VsaKernels other = new VsaKernels(library, vsa.path(), 96 - vsa.coarseBackwardBlock());
                        double otherCoarse = medianMillis(scope, stream, s -> other.coarseBackward(dg, dO, gg, ws, scale, s));
                        System.out.printf(Locale.ROOT, "  %-16s coarse backward %.3f ms with %d-tile blocks, %.3f ms with %d%n",
                                variant, coarseBackward, vsa.coarseBackwardBlock(), otherCoarse, other.coarseBackwardBlock());
                    }
                    double gatedOff = medianMillis(scope, stream, s -> vsa.forwardFine(dq, dk, dv, ws, scale, s));
                    double selectionOnly = medianMillis(scope, stream, s -> vsa.coarse(ws, scale, false, s));
                    System.out.printf(Locale.ROOT, "  %-16s gate-off forward (DiT's forwardFine) %.3f ms, of which the selection %.3f ms%n",
                            variant, gatedOff, selectionOnly);
                    System.out.printf(Locale.ROOT, "  %-16s forward %.3f ms (pool %.3f, coarse %.3f, fine %.3f, combine %.3f),"
                                    + " backward %.3f ms (fine %.3f, coarse %.3f), forward+backward %.3f ms,"
                                    + " sampled rows rel. error %.2e%s%n", variant, forward, pool, coarse, fine, combine,
                            backward, fineBackward, coarseBackward, forwardBackward, error, unwritten);
                    rows.add(new Row(name, seq, variant, pool, coarse, fine, combine, forward, fineBackward, coarseBackward,
                            backward, forwardBackward, pairs, error));
                }
            }
        }
        return rows;
    }

    /** Uniform values of unit variance rounded to bf16, drawn in parallel chunks (60 M values per tensor here). */
    private static FloatTensor random(Random rnd, int[] shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        long seed = rnd.nextLong();
        int chunk = 1 << 20;
        IntStream.range(0, (data.length + chunk - 1) / chunk).parallel().forEach(c -> {
            SplittableRandom r = new SplittableRandom(seed + c);
            for (int i = c * chunk; i < Math.min(data.length, (c + 1) * chunk); i++) {
                data[i] = DType.BF16.decodeHalf(DType.BF16.encodeHalf((float) (Math.sqrt(3) * (2 * r.nextDouble() - 1))));
            }
        });
        return t;
    }

    private static long nonFinite(FloatTensor t) {
        long n = 0;
        for (float x : t.data()) {
            if (!Float.isFinite(x)) {
                n++;
            }
        }
        return n;
    }

    /** Σ over planes and query rows of the keys attended (the real tokens of the selected tiles). */
    private static double attendedPairs(TileLists[] selection, TileGrid grid) {
        double pairs = 0;
        for (TileLists lists : selection) {
            for (int t = 0; t < grid.tileCount(); t++) {
                long keys = 0;
                for (int kv : lists.of(t)) {
                    keys += grid.tileTokens(kv);
                }
                pairs += (double) grid.tileTokens(t) * keys;
            }
        }
        return pairs;
    }

    /**
     * Relative L2 error of head 0's output on a few query tiles against a float64 computation with the GPU's
     * selection (coarse attention over all pooled tiles, times the gate, plus fine attention over the selected tiles).
     */
    private static double sampledError(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, FloatTensor out,
                                       TileLists selection, TileGrid grid, int topK, float scale) {
        int tiles = grid.tileCount();
        int[] starts = grid.tileStarts();
        double[][] pq = pool(q, starts), pk = pool(k, starts), pv = pool(v, starts);
        double diff = 0, norm = 0;
        for (int i = 0; i < SAMPLED_TILES; i++) {
            int t = (int) ((long) i * (tiles - 1) / (SAMPLED_TILES - 1));
            double[] coarse = attend(pq[t], pk, pv, scale);
            int[] keys = selectedKeys(selection.of(t), starts);
            for (int r = starts[t]; r < starts[t + 1]; r++) {
                double[] fine = attend(row(q, r), rowsOf(k, keys), rowsOf(v, keys), scale);
                for (int c = 0; c < D; c++) {
                    double expected = coarse[c] * gate.data()[r * D + c] + fine[c];
                    double e = out.data()[r * D + c] - expected;
                    diff += e * e;
                    norm += expected * expected;
                }
            }
        }
        if (selection.count(0) != topK) {
            throw new IllegalStateException("selection of tile 0 holds " + selection.count(0) + " tiles, expected " + topK);
        }
        return Math.sqrt(diff / norm);
    }

    private static double[] attend(double[] query, double[][] keys, double[][] values, float scale) {
        double[] s = new double[keys.length];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < keys.length; j++) {
            double dot = 0;
            for (int c = 0; c < D; c++) {
                dot += query[c] * keys[j][c];
            }
            s[j] = dot * scale;
            max = Math.max(max, s[j]);
        }
        double sum = 0;
        double[] o = new double[D];
        for (int j = 0; j < keys.length; j++) {
            double p = Math.exp(s[j] - max);
            sum += p;
            for (int c = 0; c < D; c++) {
                o[c] += p * values[j][c];
            }
        }
        for (int c = 0; c < D; c++) {
            o[c] /= sum;
        }
        return o;
    }

    /** Head 0's per-tile means. */
    private static double[][] pool(FloatTensor x, int[] starts) {
        double[][] pooled = new double[starts.length - 1][D];
        for (int t = 0; t + 1 < starts.length; t++) {
            for (int r = starts[t]; r < starts[t + 1]; r++) {
                for (int c = 0; c < D; c++) {
                    pooled[t][c] += x.data()[r * D + c];
                }
            }
            for (int c = 0; c < D; c++) {
                pooled[t][c] /= starts[t + 1] - starts[t];
            }
        }
        return pooled;
    }

    private static int[] selectedKeys(int[] kvTiles, int[] starts) {
        return Arrays.stream(kvTiles).flatMap(t -> IntStream.range(starts[t], starts[t + 1])).toArray();
    }

    private static double[] row(FloatTensor x, int r) {
        double[] out = new double[D];
        for (int c = 0; c < D; c++) {
            out[c] = x.data()[r * D + c];
        }
        return out;
    }

    private static double[][] rowsOf(FloatTensor x, int[] rows) {
        double[][] out = new double[rows.length][];
        for (int i = 0; i < rows.length; i++) {
            out[i] = row(x, rows[i]);
        }
        return out;
    }

    /** int32 little-endian [heads, tiles, k] of batch 0. */
    private static void writeSelection(Path file, TileLists[] selection, int tiles, int topK) {
        ByteBuffer bytes = ByteBuffer.allocate(4 * HEADS * tiles * topK).order(ByteOrder.LITTLE_ENDIAN);
        for (int h = 0; h < HEADS; h++) {
            for (int t = 0; t < tiles; t++) {
                for (int kv : selection[h].of(t)) {
                    bytes.putInt(kv);
                }
            }
        }
        try {
            Files.createDirectories(file.getParent());
            Files.write(file, bytes.array());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        System.out.println("  selection written to " + file);
    }
}
