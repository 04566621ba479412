"""mask_tokens: BERT's statistics, what is never masked, static shapes, seeds, tf.data, XLA."""

import numpy as np
import pytest
import tensorflow as tf

from keras_seq.data.masked_lm import mask_tokens

VOCABULARY, MASK, PAD, CLS, SEP = 1000, 4, 0, 2, 3
RNG = np.random.default_rng(0)
LENGTHS = RNG.integers(10, 129, size=512)
TOKENS = RNG.integers(5, VOCABULARY, size=(512, 128)).astype("int32")
TOKENS[:, 0] = CLS
TOKENS[np.arange(512), LENGTHS - 1] = SEP
TOKENS[np.arange(128)[None, :] >= LENGTHS[:, None]] = PAD
KWARGS = {
    "vocabulary_size": VOCABULARY,
    "mask_token_id": MASK,
    "unselectable_token_ids": (PAD, CLS, SEP),
}


def chosen_mask(outputs, shape):
    """Bool `(B, T)`: the positions chosen for prediction (padding entries excluded)."""
    positions = np.asarray(outputs["mask_positions"])
    weights = np.asarray(outputs["mask_weights"])
    chosen = np.zeros(shape, bool)
    for row in range(shape[0]):
        chosen[row, positions[row][weights[row] > 0]] = True
    return chosen


def test_bert_statistics_over_a_large_batch():
    outputs = mask_tokens(TOKENS, max_predictions=20, seed=1, **KWARGS)
    chosen = chosen_mask(outputs, TOKENS.shape)
    selectable = TOKENS > SEP
    # 15% of each sequence's selectable tokens (rounded, at least one, at most 20).
    expected = np.clip(np.maximum(np.round(0.15 * selectable.sum(1)), 1), 0, 20)
    np.testing.assert_array_equal(chosen.sum(1), expected)
    assert abs(chosen.sum() / selectable.sum() - 0.15) < 0.01
    assert not np.any(chosen & ~selectable)  # Never padding, [CLS] or [SEP].
    masked = np.asarray(outputs["token_ids"])
    np.testing.assert_array_equal(masked[~chosen], TOKENS[~chosen])
    new, old = masked[chosen], TOKENS[chosen]
    assert abs(np.mean(new == MASK) - 0.8) < 0.03
    assert abs(np.mean(new == old) - 0.1) < 0.02  # Kept (a random draw hits it 0.1% of times).
    assert abs(np.mean((new != MASK) & (new != old)) - 0.1) < 0.02  # Random ids.
    assert np.all((new >= 0) & (new < VOCABULARY))


def test_outputs_describe_the_predictions():
    outputs = mask_tokens(TOKENS[:64], max_predictions=20, seed=2, **KWARGS)
    positions = np.asarray(outputs["mask_positions"])
    weights = np.asarray(outputs["mask_weights"])
    ids = np.asarray(outputs["mask_ids"])
    assert outputs["mask_positions"].dtype == tf.int32
    assert outputs["mask_weights"].dtype == tf.float32
    assert outputs["mask_ids"].dtype == outputs["token_ids"].dtype == tf.int32
    for row in range(64):
        count = int(weights[row].sum())
        assert np.all(weights[row, :count] == 1.0) and np.all(weights[row, count:] == 0.0)
        assert np.all(np.diff(positions[row, :count]) > 0)  # Increasing, distinct.
        np.testing.assert_array_equal(ids[row, :count], TOKENS[row, positions[row, :count]])
        assert np.all(positions[row, count:] == 0) and np.all(ids[row, count:] == 0)


def test_padding_mask_and_max_predictions():
    padding_mask = np.ones(TOKENS.shape, bool)
    padding_mask[:, 64:] = False
    outputs = mask_tokens(
        TOKENS, padding_mask=padding_mask, mask_rate=0.5, max_predictions=7, seed=3, **KWARGS
    )
    chosen = chosen_mask(outputs, TOKENS.shape)
    assert not chosen[:, 64:].any()
    assert chosen.sum(1).max() == 7 and outputs["mask_positions"].shape == (512, 7)


def test_default_max_predictions_and_short_sequences():
    outputs = mask_tokens(TOKENS, seed=4, **KWARGS)
    assert outputs["mask_positions"].shape == (512, 20)  # ceil(0.15 * 128), as BERT uses.
    # Fewer tokens than prediction slots; a sequence with nothing selectable.
    short = np.array([[CLS, 11, 12, SEP], [CLS, SEP, PAD, PAD]], "int64")
    outputs = mask_tokens(short, max_predictions=6, seed=5, **KWARGS)
    np.testing.assert_array_equal(np.asarray(outputs["mask_weights"]).sum(1), [1.0, 0.0])
    assert outputs["token_ids"].dtype == tf.int64 and outputs["mask_ids"].dtype == tf.int64
    np.testing.assert_array_equal(np.asarray(outputs["token_ids"])[1], short[1])


def test_determinism_with_a_seed():
    first = mask_tokens(TOKENS[:32], max_predictions=20, seed=11, **KWARGS)
    again = mask_tokens(TOKENS[:32], max_predictions=20, seed=11, **KWARGS)
    pair = mask_tokens(TOKENS[:32], max_predictions=20, seed=(11, 0), **KWARGS)
    other = mask_tokens(TOKENS[:32], max_predictions=20, seed=12, **KWARGS)
    unseeded = [mask_tokens(TOKENS[:32], max_predictions=20, **KWARGS) for _ in range(2)]
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        np.testing.assert_array_equal(first[key], pair[key])
    assert not np.array_equal(first["mask_positions"], other["mask_positions"])
    assert not np.array_equal(unseeded[0]["mask_positions"], unseeded[1]["mask_positions"])


def test_single_sequence():
    outputs = mask_tokens(TOKENS[0], seed=6, **KWARGS)
    assert outputs["token_ids"].shape == (128,)
    assert outputs["mask_positions"].shape == outputs["mask_weights"].shape == (20,)
    count = int(np.asarray(outputs["mask_weights"]).sum())
    assert count == max(1, round(0.15 * (LENGTHS[0] - 2)))


def test_inside_dataset_map_with_static_shapes():
    for batched in (True, False):
        dataset = tf.data.Dataset.from_tensor_slices(TOKENS[:32])
        if batched:
            dataset = dataset.batch(8)
        dataset = dataset.map(lambda ids: mask_tokens(ids, max_predictions=20, **KWARGS))
        prefix = (None,) if batched else ()
        assert dataset.element_spec["token_ids"].shape == prefix + (128,)
        for key in ("mask_positions", "mask_ids", "mask_weights"):
            assert dataset.element_spec[key].shape == prefix + (20,)
        elements = list(dataset.as_numpy_iterator())
        assert len(elements) == (4 if batched else 32)
        positions = np.concatenate([np.reshape(e["mask_positions"], (-1, 20)) for e in elements])
        assert positions.shape == (32, 20)
    # Seeds from Dataset.enumerate give reproducible draws that differ between elements
    # (here four copies of one sequence).
    seeded = (
        tf.data.Dataset.from_tensor_slices(np.repeat(TOKENS[:1], 4, axis=0))
        .enumerate()
        .map(lambda i, ids: mask_tokens(ids, max_predictions=20, seed=tf.stack([i, i]), **KWARGS))
    )
    runs = [[e["mask_positions"] for e in seeded.as_numpy_iterator()] for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0][0], runs[0][1])


def test_compiles_with_xla_with_the_same_draws():
    function = tf.function(
        lambda ids: mask_tokens(ids, max_predictions=20, seed=9, **KWARGS), jit_compile=True
    )
    compiled, eager = (
        function(TOKENS[:16]),
        mask_tokens(TOKENS[:16], max_predictions=20, seed=9, **KWARGS),
    )
    for key in eager:
        np.testing.assert_array_equal(compiled[key], eager[key])


def test_dynamic_length_needs_max_predictions():
    function = tf.function(
        lambda ids: mask_tokens(ids, **KWARGS),
        input_signature=[tf.TensorSpec((None, None), tf.int32)],
    )
    with pytest.raises(ValueError, match="max_predictions"):
        function.get_concrete_function()


INVALID_ARGUMENTS = [
    ({"vocabulary_size": 0}, ValueError, "vocabulary_size"),
    ({"mask_token_id": VOCABULARY}, ValueError, "mask_token_id"),
    ({"mask_token_id": -1}, ValueError, "mask_token_id"),
    ({"mask_token_id": 1.0}, TypeError, "mask_token_id"),
    ({"mask_rate": 0.0}, ValueError, "mask_rate"),
    ({"mask_rate": 1.5}, ValueError, "mask_rate"),
    ({"mask_token_rate": -0.1}, ValueError, "mask_token_rate"),
    ({"random_token_rate": "0.1"}, TypeError, "random_token_rate"),
    ({"mask_token_rate": 0.8, "random_token_rate": 0.3}, ValueError, "random_token_rate"),
    ({"max_predictions": 0}, ValueError, "max_predictions"),
    ({"unselectable_token_ids": "0"}, TypeError, "unselectable_token_ids"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": (1.0, 2.0)}, TypeError, "seed"),
    ({"seed": (1, 2, 3)}, ValueError, "seed"),
    ({"padding_mask": np.ones((512, 127), bool)}, ValueError, "padding_mask"),
]


def test_invalid_arguments():
    # One test for all cases: the per-test Keras clean-up costs more than the checks.
    for kwargs, error, match in INVALID_ARGUMENTS:
        with pytest.raises(error, match=match):
            mask_tokens(TOKENS, **{**KWARGS, **kwargs})
    for token_ids in (np.zeros((2, 3, 4), "int32"), np.zeros((2, 3), "float32")):
        with pytest.raises((ValueError, TypeError), match="token_ids"):
            mask_tokens(token_ids, **KWARGS)
