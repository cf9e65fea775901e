package tileattn.search;

import java.util.Arrays;

/**
 * How the denoising steps of a strategy relate to the searched steps. The first {@code fullSteps} steps attend
 * densely and are not searched; every other step uses the windows chosen at the last searched step at or before
 * it, or at the first searched step when none precedes it. So captures from every fifth step give a strategy
 * for all steps.
 *
 * @param steps         denoising steps of the strategy
 * @param fullSteps     leading steps forced to dense attention
 * @param searchedSteps ascending, each in [fullSteps, steps)
 */
public record StepPlan(int steps, int fullSteps, int[] searchedSteps) {

    public StepPlan {
        searchedSteps = searchedSteps.clone();
        if (steps < 1) {
            throw new IllegalArgumentException("a strategy needs at least one step, got " + steps);
        }
        if (fullSteps < 0 || fullSteps > steps) {
            throw new IllegalArgumentException("full steps must be in 0.." + steps + ", got " + fullSteps);
        }
        if (fullSteps < steps && searchedSteps.length == 0) {
            throw new IllegalArgumentException("steps " + fullSteps + ".." + (steps - 1)
                    + " are not forced dense, but no captured step at or after step " + fullSteps + " is there to search");
        }
        for (int i = 0; i < searchedSteps.length; i++) {
            int s = searchedSteps[i];
            if (s < fullSteps || s >= steps || (i > 0 && s <= searchedSteps[i - 1])) {
                throw new IllegalArgumentException("searched steps " + Arrays.toString(searchedSteps)
                        + " must be ascending and within " + fullSteps + ".." + (steps - 1));
            }
        }
    }

    /**
     * The plan for captures of the given steps: captured steps before {@code fullSteps} are not searched.
     *
     * @throws IllegalArgumentException when a captured step is not a step of the strategy
     */
    public static StepPlan forCaptured(int steps, int fullSteps, int[] capturedSteps) {
        for (int s : capturedSteps) {
            if (s >= steps) {
                throw new IllegalArgumentException("step " + s + " was captured, but the strategy has only " + steps
                        + " steps (0.." + (steps - 1) + "); give the model's number of denoising steps");
            }
        }
        return new StepPlan(steps, fullSteps, Arrays.stream(capturedSteps).filter(s -> s >= fullSteps).sorted().distinct().toArray());
    }

    @Override
    public int[] searchedSteps() {
        return searchedSteps.clone();
    }

    /** Index into the searched steps whose choice step {@code step} uses, or -1 for a forced dense step. */
    public int sourceOf(int step) {
        if (step < fullSteps) {
            return -1;
        }
        int i = Arrays.binarySearch(searchedSteps, step);
        if (i >= 0) {
            return i;
        }
        int before = -i - 2;
        return Math.max(before, 0);
    }

    /** How many strategy steps use each searched step's choice. */
    public int[] weights() {
        int[] w = new int[searchedSteps.length];
        for (int s = fullSteps; s < steps; s++) {
            w[sourceOf(s)]++;
        }
        return w;
    }
}
