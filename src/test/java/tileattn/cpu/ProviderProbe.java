package tileattn.cpu;

import java.util.Random;
import tileattn.tensor.FloatTensor;

/**
 * Run in a child JVM by VectorOpsTest (without JUnit on the class path): prints the chosen implementation and
 * the relative L2 error of a small dense attention against the double reference.
 */
public final class ProviderProbe {

    private ProviderProbe() {
    }

    public static void main(String[] args) {
        Random rnd = new Random(3);
        FloatTensor[] qkv = new FloatTensor[3];
        for (int i = 0; i < 3; i++) {
            qkv[i] = FloatTensor.zeros(1, 2, 37, 8);
            for (int j = 0; j < qkv[i].size(); j++) {
                qkv[i].data()[j] = (float) rnd.nextGaussian();
            }
        }
        float scale = CpuAttention.defaultScale(8);
        float[] a = CpuAttention.dense(qkv[0], qkv[1], qkv[2], scale).data();
        float[] b = ReferenceAttention.dense(qkv[0], qkv[1], qkv[2], scale).data();
        double diff = 0, norm = 0;
        for (int i = 0; i < a.length; i++) {
            diff += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
            norm += (double) b[i] * b[i];
        }
        System.out.println("probe: " + VectorOpsProvider.get().name() + " " + Math.sqrt(diff / norm));
    }
}
