package tileattn.cpu;

/** VSA's selection rule: the k highest scores, ties going to the lower tile index, returned in ascending order. */
final class TopKTiles {

    private TopKTiles() {
    }

    /**
     * Writes the indices of the k largest of scores[0..n) into dst[dstOff..dstOff+k), ascending. Each score gets a
     * distinct key that orders by score descending, then index ascending; the k-th smallest key (found in linear
     * expected time) is the threshold, and one pass in index order collects the keys at or below it.
     *
     * @param keys scratch of at least n entries
     */
    static void select(float[] scores, int n, int k, long[] keys, int[] dst, int dstOff) {
        for (int i = 0; i < n; i++) {
            keys[i] = key(scores[i], i);
        }
        long threshold = kthSmallest(keys, n, k - 1);
        for (int i = 0, c = dstOff; i < n; i++) {
            if (key(scores[i], i) <= threshold) {
                dst[c++] = i;
            }
        }
    }

    private static long key(float score, int index) {
        return ((long) ~sortableBits(score) << 32) | index;
    }

    /** An int whose signed order is the order of the floats (−0 just below +0, NaN above +∞). */
    private static int sortableBits(float f) {
        int bits = Float.floatToIntBits(f);
        return bits ^ ((bits >> 31) & 0x7fffffff);
    }

    /** The value of rank r (0-based) among a[0..n) of distinct values; reorders a. */
    private static long kthSmallest(long[] a, int n, int r) {
        int lo = 0, hi = n - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            long pivot = medianOfThree(a[lo], a[mid], a[hi]);
            int i = lo, j = hi;
            while (i <= j) {
                while (a[i] < pivot) {
                    i++;
                }
                while (a[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    long t = a[i];
                    a[i] = a[j];
                    a[j] = t;
                    i++;
                    j--;
                }
            }
            if (r <= j) {
                hi = j;
            } else if (r >= i) {
                lo = i;
            } else {
                return a[r];
            }
        }
        return a[lo];
    }

    private static long medianOfThree(long a, long b, long c) {
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    }
}
