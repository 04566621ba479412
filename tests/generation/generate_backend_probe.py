"""`generate()` on another Keras backend, run in a fresh process by
tests/generation/test_generate_on_backends.py:

    KERAS_BACKEND=jax python -m tests.generation.generate_backend_probe DIRECTORY

DIRECTORY holds `gpt.keras` and `gpt.npz` (prompts and the token ids TensorFlow generated,
saved by the test). Prints, after `RESULTS_PREFIX`, one JSON object `{check: "ok" or the
error}`. References: TensorFlow's output for the same weights, the uncompiled loop on this
backend, the streamed tokens against the returned ones, and the prompt traced once.
"""

import json
import sys
import traceback

import keras
import numpy as np

import keras_seq

RESULTS_PREFIX = "RESULTS "


def load(directory):
    """`(model, data, prompts)`: the GPT the test saved in `directory`, its `gpt.npz` (the
    prompts and TensorFlow's greedy and beam tokens), and the prompts."""
    model = keras.saving.load_model(f"{directory}/gpt.keras")
    data = np.load(f"{directory}/gpt.npz")
    return model, data, data["prompts"]


def run_checks(checks):
    """Run `(name, function)` pairs in order and print, after `RESULTS_PREFIX`, `{name: "ok"
    or the traceback}`."""
    results = {}
    for name, function in checks:
        try:
            function()
            results[name] = "ok"
        except Exception:  # reported to the test, which fails on anything but "ok"
            results[name] = traceback.format_exc()[-2000:]
    print(RESULTS_PREFIX + json.dumps(results))


def main(directory):
    model, data, prompts = load(directory)

    def same_as_tensorflow():
        for strategy in ("greedy", "beam"):
            tokens = keras.ops.convert_to_numpy(model.generate(prompts, 8, strategy=strategy))
            np.testing.assert_array_equal(tokens, data[strategy])

    def compiled_equals_uncompiled():
        for kwargs in ({}, {"strategy": "beam", "num_beams": 3}, {"strategy": "top_k", "seed": 4}):
            compiled = keras.ops.convert_to_numpy(model.generate(prompts, 8, **kwargs))
            plain = model.generate(prompts, 8, jit_compile=False, **kwargs)
            np.testing.assert_array_equal(compiled, keras.ops.convert_to_numpy(plain))

    def seeds_advance_between_calls():
        first = keras.ops.convert_to_numpy(model.generate(prompts, 8, strategy="sample"))
        draws = [keras.ops.convert_to_numpy(model.generate(prompts, 8, strategy="sample"))]
        draws.append(keras.ops.convert_to_numpy(model.generate(prompts, 8, strategy="sample")))
        assert any(not np.array_equal(first, draw) for draw in draws), "the same draw thrice"

    def traced_once_per_shape():
        calls = []
        prefill = model.prefill

        def counting_prefill(*args, **kwargs):
            calls.append(1)  # runs while tracing only, once the loop is compiled
            return prefill(*args, **kwargs)

        model.prefill = counting_prefill
        try:
            for _ in range(3):
                model.generate(prompts, 5)
        finally:
            del model.prefill
        assert len(calls) == 1, f"prefill traced {len(calls)} times for one shape"

    def streams_the_returned_tokens():
        streamed = []
        tokens = model.generate(prompts, 8, streamer=streamed.append)
        new = keras.ops.convert_to_numpy(tokens)[:, prompts.shape[1] :]
        np.testing.assert_array_equal(np.stack(streamed, axis=1), new)

    def new_weights_are_used():
        before = keras.ops.convert_to_numpy(model.generate(prompts, 8))
        for variable in model.trainable_variables:
            variable.assign(variable.value * 1.5)
        after = keras.ops.convert_to_numpy(model.generate(prompts, 8))
        plain = keras.ops.convert_to_numpy(model.generate(prompts, 8, jit_compile=False))
        np.testing.assert_array_equal(after, plain)
        assert not np.array_equal(after, before), "the weights changed, the tokens did not"

    def speculative_equals_greedy():
        greedy = keras.ops.convert_to_numpy(model.generate(prompts, 8))
        tokens = keras_seq.generation.speculative_generate(model, model, prompts, 8)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(tokens), greedy)

    run_checks(
        [
            ("same_as_tensorflow", same_as_tensorflow),
            ("compiled_equals_uncompiled", compiled_equals_uncompiled),
            ("seeds_advance_between_calls", seeds_advance_between_calls),
            ("traced_once_per_shape", traced_once_per_shape),
            ("streams_the_returned_tokens", streams_the_returned_tokens),
            ("speculative_equals_greedy", speculative_equals_greedy),
            ("new_weights_are_used", new_weights_are_used),  # last: it changes the weights
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1])
