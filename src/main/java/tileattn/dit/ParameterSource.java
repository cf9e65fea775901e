package tileattn.dit;

import tileattn.tensor.FloatTensor;

/** Supplies one parameter of a Wan model by its diffusers name; the tensor must have the shape asked for. */
@FunctionalInterface
public interface ParameterSource {

    FloatTensor get(String name, int[] shape);
}
