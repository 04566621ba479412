"""`generate(jit_compile=True)` on PyTorch (the model's step compiled by `torch.compile`), run
in a fresh process by tests/generation/test_generate_on_backends.py:

    KERAS_BACKEND=torch python -m tests.generation.generate_torch_probe DIRECTORY

DIRECTORY holds `gpt.keras` and `gpt.npz` (prompts and the token ids TensorFlow generated,
saved by the test). Prints, after `RESULTS_PREFIX`, one JSON object `{check: "ok" or the
error}`. References: TensorFlow's output for the same weights, the eager loop on this backend
(`jit_compile=False`), the streamed tokens against the returned ones, and PyTorch's counts of
compiled graphs (no new graph for a shape seen before) and of graph breaks (none).
"""

import sys

import keras
import numpy as np
import torch
from torch._dynamo.utils import counters  # guarded in tests/test_private_keras_api.py

import keras_seq
from keras_seq.generation.generate import generate
from tests.generation.generate_backend_probe import load
from tests.generation.generate_backend_probe import run_checks


def main(directory):
    model, data, prompts = load(directory)

    def numpy(tokens):
        return keras.ops.convert_to_numpy(tokens)

    def same_as_tensorflow():
        for strategy in ("greedy", "beam"):
            for jit_compile in (True, False):
                tokens = model.generate(prompts, 8, strategy=strategy, jit_compile=jit_compile)
                np.testing.assert_array_equal(numpy(tokens), data[strategy])

    def compiled_equals_eager():
        for kwargs in (
            {"strategy": "beam", "num_beams": 3},
            {"strategy": "top_k", "seed": 4},
            {"strategy": "sample", "seed": 5, "return_scores": "token"},
        ):
            compiled = generate(model, prompts, 8, jit_compile=True, **kwargs)
            eager = generate(model, prompts, 8, jit_compile=False, **kwargs)
            for ours, reference in zip(keras.tree.flatten(compiled), keras.tree.flatten(eager)):
                np.testing.assert_allclose(numpy(ours), numpy(reference), rtol=1e-5, atol=1e-5)

    def default_is_eager():
        graphs = counters["stats"]["unique_graphs"]
        model.generate(prompts[:1], 3)  # a shape not compiled yet
        assert counters["stats"]["unique_graphs"] == graphs, "jit_compile=None compiled"

    def seeds_advance_between_calls():
        draws = [
            numpy(model.generate(prompts, 8, strategy="sample", jit_compile=True)) for _ in range(3)
        ]
        assert any(not np.array_equal(draws[0], draw) for draw in draws[1:]), "one draw thrice"

    def compiled_once_per_shape():
        model.generate(prompts, 5, jit_compile=True)
        graphs = counters["stats"]["unique_graphs"]
        assert graphs > 0, "nothing was compiled"
        for _ in range(3):
            model.generate(prompts, 5, jit_compile=True)
        model.generate(prompts, 5, strategy="top_k", jit_compile=True)  # the same step shapes
        assert counters["stats"]["unique_graphs"] == graphs, (
            f"{counters['stats']['unique_graphs'] - graphs} graphs compiled again for one shape"
        )

    def the_step_compiles_without_graph_breaks():
        # A graph break splits the step into graphs with Python between them (a tensor
        # offset read as a number broke GPT's step into ~10, 1.5x slower).
        model.generate(prompts, 6, jit_compile=True)
        assert not counters["graph_break"], f"graph breaks: {list(counters['graph_break'])}"

    def no_gradients_kept():
        tokens, scores = model.generate(prompts, 4, return_scores=True, jit_compile=True)
        assert not scores.requires_grad, "decoding built an autograd graph"
        assert torch.is_grad_enabled(), "gradients left off after decoding"

    def streams_the_returned_tokens():
        streamed = []
        tokens = model.generate(prompts, 8, streamer=streamed.append, jit_compile=True)
        np.testing.assert_array_equal(
            np.stack(streamed, axis=1), numpy(tokens)[:, prompts.shape[1] :]
        )

    def speculative_equals_greedy():
        greedy = numpy(model.generate(prompts, 8, jit_compile=False))
        tokens = keras_seq.generation.speculative_generate(
            model, model, prompts, 8, jit_compile=True
        )
        np.testing.assert_array_equal(numpy(tokens), greedy)

    def new_weights_are_used():
        before = numpy(model.generate(prompts, 8, jit_compile=True))
        for variable in model.trainable_variables:
            variable.assign(variable.value * 1.5)
        after = numpy(model.generate(prompts, 8, jit_compile=True))
        eager = numpy(model.generate(prompts, 8, jit_compile=False))
        np.testing.assert_array_equal(after, eager)
        assert not np.array_equal(after, before), "the weights changed, the tokens did not"

    run_checks(
        [
            ("same_as_tensorflow", same_as_tensorflow),
            ("compiled_equals_eager", compiled_equals_eager),
            ("default_is_eager", default_is_eager),
            ("seeds_advance_between_calls", seeds_advance_between_calls),
            ("compiled_once_per_shape", compiled_once_per_shape),
            ("the_step_compiles_without_graph_breaks", the_step_compiles_without_graph_breaks),
            ("no_gradients_kept", no_gradients_kept),
            ("streams_the_returned_tokens", streams_the_returned_tokens),
            ("speculative_equals_greedy", speculative_equals_greedy),
            ("new_weights_are_used", new_weights_are_used),  # last: it changes the weights
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1])
