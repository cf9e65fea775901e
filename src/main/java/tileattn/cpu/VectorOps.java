package tileattn.cpu;

/**
 * The arithmetic the CPU attention kernels run, in fp32. Two implementations exist: one on the Vector API
 * ({@code jdk.incubator.vector}) and a plain-Java one for JVMs started without that module;
 * {@link VectorOpsProvider#get()} picks one at run time.
 *
 * <p>The block kernels work on a block of query rows stored transposed, {@code qt[dd * w + i]} for row i of a
 * block of width w (w a multiple of {@link #lanes()}), so every vector runs along query rows and any head
 * dimension d works without tails. Scores of a block against n keys are stored the same way,
 * {@code st[j * w + i]}, and so is the output accumulator, {@code ot[dd * w + i]}.
 */
public interface VectorOps {

    /** Query-row blocks must be padded to a multiple of this. */
    int lanes();

    /** A short name for logs and benchmark tables. */
    String name();

    /** Σ a[aOff + i] · b[bOff + i] for i &lt; n. */
    float dot(float[] a, int aOff, float[] b, int bOff, int n);

    /** y[yOff + i] += alpha · x[xOff + i] for i &lt; n. */
    void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n);

    /** y[off + i] *= s for i &lt; n. */
    void scale(float[] y, int off, int n, float s);

    /**
     * Scores of n keys against a transposed query block: {@code st[j*w + i] = Σ_dd k[kOff + j*d + dd] ·
     * qt[qOff + dd*w + i]} for j &lt; n, i &lt; w.
     */
    void scores(float[] k, int kOff, int n, int d, float[] qt, int qOff, int w, float[] st);

    /**
     * One online-softmax step over the scores of n keys, per query row i &lt; w: the running maximum
     * {@code m[rowOff + i]} absorbs the new scores, {@code alpha[i] = exp(old max − new max)} is the factor that
     * rescales earlier partial sums, {@code st} is replaced by exp(score − new max), and the running sum
     * {@code l[rowOff + i]} becomes l·alpha + Σ_j exp.
     */
    void softmaxStep(float[] st, int n, int w, float[] m, float[] l, int rowOff, float[] alpha);

    /**
     * {@code ot[oOff + dd*w + i] = ot[...] · alpha[i] + Σ_j p[j*w + i] · v[vOff + j*d + dd]} for dd &lt; d, i &lt; w:
     * rescales the accumulator and adds the weighted values of n keys.
     */
    void accumulate(float[] p, int n, int w, float[] v, int vOff, int d, float[] ot, int oOff, float[] alpha);
}
