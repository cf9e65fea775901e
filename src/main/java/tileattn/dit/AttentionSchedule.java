package tileattn.dit;

/** The self-attention of each denoising step. */
@FunctionalInterface
public interface AttentionSchedule {

    SelfAttention at(int step);

    static AttentionSchedule always(SelfAttention attention) {
        return step -> attention instanceof SelfAttention.Sta sta ? sta.atStep(step) : attention;
    }

    /**
     * Dense attention for the first {@code denseSteps} steps, then {@code sparse}. The dense steps keep the sparse
     * attention's tile order, which changes nothing in their result.
     */
    static AttentionSchedule denseFirst(int denseSteps, AttentionSchedule sparse) {
        if (denseSteps < 0) {
            throw new IllegalArgumentException("dense steps must be >= 0, got " + denseSteps);
        }
        return step -> {
            SelfAttention s = sparse.at(step);
            return step < denseSteps ? new SelfAttention.Dense(s.tile()) : s;
        };
    }
}
