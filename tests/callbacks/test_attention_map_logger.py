"""AttentionMapLogger and the attention recorder: the heatmaps in the images read back from the
event files equal the attention probabilities computed independently (the blocks'
`return_attention_scores`, `RNNSeq2SeqLM.attention_weights`, the softmax of the logits), for
self- and cross-attention, Bahdanau alignments in a recurrent decoder, Swin windows and DETR
queries; tags that do not depend on Keras' automatic names; errors."""

import os

import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from keras_seq.callbacks.attention_map_logger import HEATMAP_LEFT
from keras_seq.callbacks.attention_map_logger import HEATMAP_TOP
from keras_seq.callbacks.attention_map_logger import AttentionMapLogger
from keras_seq.callbacks.attention_map_logger import render_attention_map
from keras_seq.layers.attention.attention_recorder import record_attention_scores
from keras_seq.layers.attention.bahdanau_attention import BahdanauAttention
from keras_seq.layers.attention.multi_head_attention import MultiHeadAttention
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.models.detr.detr_backbone import DETRBackbone
from keras_seq.models.detr.detr_object_detector import DETRObjectDetector
from keras_seq.models.rnn_seq2seq_backbone import RNNSeq2SeqBackbone
from keras_seq.models.rnn_seq2seq_lm import RNNSeq2SeqLM
from keras_seq.models.swin.swin_backbone import SwinBackbone
from keras_seq.models.swin.swin_image_classifier import SwinImageClassifier

rng = np.random.default_rng(0)


def read_images(log_dir):
    """`{tag: {step: uint8 array (num_images, H, W, 3)}}` from `log_dir/attention`."""
    accumulator = EventAccumulator(os.path.join(log_dir, "attention"), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert accumulator.Tags()["images"] == []  # tf.summary images arrive as tensors
    result = {}
    for tag in accumulator.Tags()["tensors"]:
        assert accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "images"
        result[tag] = {}
        for event in accumulator.Tensors(tag):
            width, height, *pngs = tf.make_ndarray(event.tensor_proto)
            images = np.stack([tf.io.decode_png(png).numpy() for png in pngs])
            assert images.shape[1:3] == (int(height), int(width))
            result[tag][event.step] = images
    return result


def upsample(array, cell_size):
    """Each entry of a 2-D array as a `cell_size` square: the reference for the images."""
    return np.kron(array, np.ones((cell_size, cell_size)))


def heatmap_of(image, shape, cell_size):
    """The heatmap pixels `(T * k, S * k, 3)` of an attention image of a `(T, S)` map; the
    image's documented size: 30 rows below the heatmap, 60 columns to its right."""
    height, width = shape[0] * cell_size, shape[1] * cell_size
    assert image.shape == (HEATMAP_TOP + height + 30, HEATMAP_LEFT + width + 60, 3)
    return image[HEATMAP_TOP : HEATMAP_TOP + height, HEATMAP_LEFT : HEATMAP_LEFT + width]


def assert_image_is(image, probabilities, cell_size):
    """A gray image's heatmap draws `probabilities` `(T, S)` times 255."""
    heatmap = heatmap_of(image, probabilities.shape, cell_size)
    assert np.all(heatmap == heatmap[..., :1])  # gray: R = G = B
    expected = upsample(np.asarray(probabilities, "float64"), cell_size)
    # Matplotlib picks colour floor(256 p) of its 256-colour table and stores it in 8 bits
    # truncated: within two levels of 255 p.
    np.testing.assert_array_less(np.abs(heatmap[..., 0] / 255.0 - expected), 2 / 255 + 1e-6)


def encoder_model():
    inputs = keras.Input((5, 8))
    x = TransformerEncoder(num_heads=2, intermediate_dim=16, name="encoder_0")(inputs)
    x = TransformerEncoder(num_heads=2, intermediate_dim=16, name="encoder_1")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def test_encoder_self_attention_per_epoch(tmp_path):
    model = encoder_model()
    x = rng.normal(size=(4, 5, 8)).astype("float32")
    probe = x[:3]
    logger = AttentionMapLogger(str(tmp_path), probe, ["encoder_1"], max_examples=2, cell_size=4)
    history = model.fit(x, np.ones((4, 5, 1)), epochs=2, callbacks=[logger], verbose=0)
    assert len(history.history["loss"]) == 2
    logged = read_images(str(tmp_path))
    assert sorted(logged) == ["attention/encoder_1/example_0", "attention/encoder_1/example_1"]
    # The last image: the final weights. Reference: the block's own scores on its input.
    block = model.get_layer("encoder_1")
    block_input = keras.Model(model.input, model.get_layer("encoder_0").output)(probe)
    _, scores = block(block_input, return_attention_scores=True)  # (B, N, T, S)
    expected = np.asarray(scores).mean(axis=1)  # averaged over heads
    for index in range(2):
        steps = logged[f"attention/encoder_1/example_{index}"]
        assert sorted(steps) == [0, 1]  # one image per epoch, at Keras' 0-based epoch
        assert steps[1].shape[0] == 1
        assert_image_is(steps[1][0], expected[index], cell_size=4)
    # Training changed the weights, and with them the first epoch's map.
    assert not np.array_equal(steps[0], steps[1])


def test_heads_every_n_epochs_and_auto_cell_size(tmp_path):
    model = encoder_model()
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    logger = AttentionMapLogger(
        str(tmp_path),
        x,
        ["encoder_0/self_attention"],
        every_n_epochs=2,
        max_examples=5,
        average_heads=False,
    )
    model.fit(x, np.ones((2, 5, 1)), epochs=5, callbacks=[logger], verbose=0)
    logged = read_images(str(tmp_path))
    # 2 examples (max_examples bounds the probe batch), steps after epochs 2 and 4.
    assert sorted(logged) == [
        "attention/encoder_0/self_attention/example_0",
        "attention/encoder_0/self_attention/example_1",
    ]
    _, scores = model.get_layer("encoder_0")(x, return_attention_scores=True)
    for index in range(2):
        steps = logged[f"attention/encoder_0/self_attention/example_{index}"]
        assert sorted(steps) == [1, 3]
        images = steps[3]
        assert images.shape[0] == 2  # one image per head
        for head in range(2):
            # 5 x 5 map: cells of ceil(128 / 5) = 26 pixels.
            assert_image_is(images[head], np.asarray(scores)[index, head], cell_size=26)


def test_decoder_self_and_cross_attention_with_dict_probe(tmp_path):
    target = keras.Input((4, 8), name="target")
    source = keras.Input((6, 8), name="source")
    outputs = TransformerDecoder(num_heads=2, intermediate_dim=16, name="decoder")(target, source)
    model = keras.Model({"target": target, "source": source}, outputs)
    model.compile("sgd", "mse")
    probe = {
        "target": rng.normal(size=(2, 4, 8)).astype("float32"),
        "source": rng.normal(size=(2, 6, 8)).astype("float32"),
    }
    names = ["decoder/self_attention", "cross_attention"]
    logger = AttentionMapLogger(str(tmp_path), probe, names, cell_size=2)
    model.fit(probe, np.zeros((2, 4, 8)), epochs=1, callbacks=[logger], verbose=0)
    logged = read_images(str(tmp_path))
    _, scores = model.get_layer("decoder")(
        probe["target"], probe["source"], return_attention_scores=True
    )
    for index in range(2):
        self_image = logged[f"attention/decoder/self_attention/example_{index}"][0][0]
        cross_image = logged[f"attention/cross_attention/example_{index}"][0][0]
        self_expected = np.asarray(scores["self_attention"])[index].mean(0)
        assert_image_is(self_image, self_expected, cell_size=2)
        assert_image_is(cross_image, np.asarray(scores["cross_attention"])[index].mean(0), 2)
        # Causal: the first query (2 pixel rows) sees one key (2 pixel columns).
        assert np.all(heatmap_of(self_image, (4, 4), 2)[:2, 2:] == 0)


def test_seq2seq_bahdanau_alignment_equals_attention_weights(tmp_path):
    backbone = RNNSeq2SeqBackbone(
        source_vocabulary_size=12,
        target_vocabulary_size=10,
        embedding_dim=6,
        hidden_dim=8,
        attention="bahdanau",
    )
    model = RNNSeq2SeqLM(backbone)
    source = np.array([[3, 4, 5, 6, 0], [7, 8, 0, 0, 0]], "int32")  # 0 is padding
    target_in = np.array([[1, 4, 5, 6], [1, 7, 2, 3]], "int32")
    probe = {"source": source, "target_in": target_in}
    logger = AttentionMapLogger(str(tmp_path), probe, ["decoder_layer_0"], cell_size=3)
    logger.set_model(model)
    logger.on_epoch_end(0)  # what fit calls; fit itself is covered above (its tracing is slow)
    expected = np.asarray(model.attention_weights(source, target_in))  # (B, T, S)
    maps = logger.attention_maps()["decoder_layer_0"]  # one step per call, stacked
    assert maps.shape == (2, 1, 4, 5)
    np.testing.assert_allclose(maps[:, 0], expected, atol=1e-6)
    logged = read_images(str(tmp_path))
    for index in range(2):
        image = logged[f"attention/decoder_layer_0/example_{index}"][0][0]
        assert_image_is(image, expected[index], cell_size=3)
    image = logged["attention/decoder_layer_0/example_1"][0][0]
    assert np.all(heatmap_of(image, (4, 5), 3)[:, 2 * 3 :] == 0)  # two real source tokens


def test_swin_windows_of_the_first_example(tmp_path):
    backbone = SwinBackbone(
        image_shape=(16, 16, 3),
        patch_size=2,
        hidden_dim=8,
        num_layers=(2,),
        num_heads=(2,),
        window_size=4,
    )
    model = SwinImageClassifier(backbone, num_classes=3)
    images = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    logger = AttentionMapLogger(
        str(tmp_path), images, ["stage_1_block_1"], max_windows=3, cell_size=1
    )
    logger.set_model(model)
    logger.log_attention_maps(step=7)
    # 8 x 8 tokens in 4 x 4 windows: 4 windows per image; the block is the shifted one.
    block_input = keras.Model(backbone.input, backbone.get_layer("stage_1_block_0").output)(images)
    _, scores = backbone.get_layer("stage_1_block_1")(block_input, return_attention_scores=True)
    scores = np.asarray(scores)  # (B * K, N, T, T)
    assert scores.shape == (2 * 4, 2, 16, 16)
    logged = read_images(str(tmp_path))
    assert sorted(logged) == [f"attention/stage_1_block_1/window_{k}" for k in range(3)]
    for window in range(3):
        image = logged[f"attention/stage_1_block_1/window_{window}"][7][0]
        assert_image_is(image, scores[window].mean(0), cell_size=1)
    # The shifted windows' mask: the last window mixes regions, so some weights are zero.
    assert np.any(scores[3] == 0) and not np.any(scores[0] == 0)


def test_detr_decoder_query_cross_attention(tmp_path):
    image_encoder = keras.Sequential(
        [keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")]
    )
    backbone = DETRBackbone(
        image_encoder=image_encoder,
        image_shape=(16, 16, 3),
        hidden_dim=16,
        num_queries=5,
        num_encoder_layers=1,
        num_decoder_layers=2,
        num_heads=2,
        intermediate_dim=16,
    )
    model = DETRObjectDetector(backbone, num_classes=3)
    images = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    name = "decoder_layer_1/cross_attention"
    logger = AttentionMapLogger(
        str(tmp_path), images, [name], average_heads=False, cell_size=2, colormap="viridis"
    )
    logger.set_model(model)
    maps = logger.attention_maps()[name]
    assert maps.shape == (2, 2, 5, 4 * 4)  # (batch, heads, queries, image tokens)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    logger.log_attention_maps(step=0)
    logged = read_images(str(tmp_path))
    images = logged[f"attention/{name}/example_0"][0]
    assert images.shape[0] == 2  # two heads
    colormap = matplotlib.colormaps["viridis"]
    for head in range(2):
        heatmap = heatmap_of(images[head], (5, 16), 2)  # queries down, image tokens across
        expected = colormap(upsample(maps[0, head], 2), bytes=True)[..., :3]
        # Float noise between the two computations moves a colour by one table step at most.
        assert np.abs(heatmap.astype(int) - expected).max() <= 6


def unnamed_encoder_model():
    inputs = keras.Input((5, 8))
    x = TransformerEncoder(num_heads=2, intermediate_dim=16)(inputs)
    x = TransformerEncoder(num_heads=2, intermediate_dim=16)(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def test_tags_do_not_depend_on_automatic_names(tmp_path):
    """The same model built twice in one process: Keras numbers the second one's automatic
    names on (`transformer_encoder_2`, `_3`); paths and so tags stay the same."""
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    first, second = unnamed_encoder_model(), unnamed_encoder_model()
    second.set_weights(first.get_weights())
    assert [layer.name for layer in first.layers[1:3]] == [
        "transformer_encoder",
        "transformer_encoder_1",
    ]
    assert [layer.name for layer in second.layers[1:3]] == [
        "transformer_encoder_2",
        "transformer_encoder_3",
    ]
    logged = []
    for run, (model, names) in enumerate(
        [
            (first, ["transformer_encoder_1/self_attention", "transformer_encoder"]),
            (second, ["transformer_encoder_1/self_attention", "transformer_encoder"]),
            # Keras' names are accepted too; the tags spell the paths.
            (second, [f"{second.layers[2].name}/self_attention", second.layers[1].name]),
        ]
    ):
        log_dir = str(tmp_path / f"run_{run}")
        logger = AttentionMapLogger(log_dir, x, names, max_examples=1, cell_size=1)
        logger.set_model(model)
        logger.log_attention_maps(step=0)
        logged.append(read_images(log_dir))
    expected_tags = [
        "attention/transformer_encoder/example_0",
        "attention/transformer_encoder_1/self_attention/example_0",
    ]
    for images in logged:
        assert sorted(images) == expected_tags
        for tag in expected_tags:  # the same layers: the same weights draw the same maps
            np.testing.assert_array_equal(images[tag][0], logged[0][tag][0])
    # The two encoders differ: the maps are told apart.
    assert not np.array_equal(*(logged[0][tag][0] for tag in expected_tags))


def test_render_draws_matplotlib_colours_axes_and_colour_bar():
    weights = np.array([[0.0, 1.0, 0.5], [0.25, 0.75, 0.1]])
    for name in ("viridis", "magma", "gray"):
        image = render_attention_map(weights, cell_size=3, colormap=name)
        # Each weight a 3 x 3 square of its colour in matplotlib's colormap (no smoothing).
        expected = matplotlib.colormaps[name](upsample(weights, 3), bytes=True)[..., :3]
        np.testing.assert_array_equal(heatmap_of(image, (2, 3), 3), expected)
    # Around the heatmap: tick and axis labels and the colour bar, on white.
    below = image[HEATMAP_TOP + 6 :, HEATMAP_LEFT : HEATMAP_LEFT + 9]
    right_of = image[HEATMAP_TOP : HEATMAP_TOP + 6, HEATMAP_LEFT + 9 :]
    assert below.max() == 255 and below.min() < 128
    assert right_of.max() == 255 and right_of.min() < 128
    # The title goes above the heatmap.
    above = (slice(0, HEATMAP_TOP), slice(HEATMAP_LEFT, HEATMAP_LEFT + 9))
    titled = render_attention_map(weights, cell_size=3, title="head 1")
    assert titled.shape == image.shape
    assert np.all(image[above] == 255) and titled[above].min() < 128

    # normalize: the map's own minimum and maximum take the colormap's ends.
    normalized = render_attention_map(np.array([[0.1, 0.2, 0.3]]), cell_size=2, normalize=True)
    row = heatmap_of(normalized, (1, 3), 2)[0, :, 0]
    np.testing.assert_array_equal(row[[0, 1, 4, 5]], [0, 0, 255, 255])
    assert 120 <= row[2] == row[3] <= 135
    constant = heatmap_of(render_attention_map(np.full((2, 2), 0.3), 2, normalize=True), (2, 2), 2)
    assert np.all(constant == constant[0, 0, 0]) and 120 <= constant[0, 0, 0] <= 135
    # Auto cell size: the longer side at least 128 pixels.
    assert heatmap_of(render_attention_map(np.zeros((3, 50))), (3, 50), 3).shape == (9, 150, 3)


def test_recorder_leaves_outputs_unchanged_and_forces_the_explicit_path():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, query_chunk_size=2, key_chunk_size=2)
    x = rng.normal(size=(2, 6, 8)).astype("float32")
    plain = np.asarray(layer(x, use_causal_mask=True))  # memory-efficient path
    with record_attention_scores([layer]) as (recorded,):
        outputs = np.asarray(layer(x, use_causal_mask=True))
        layer(x)
    np.testing.assert_allclose(outputs, plain, atol=1e-5)
    assert len(recorded) == 2
    # Independent reference: softmax of the scaled query-key products, causal.
    query = np.asarray(layer.query_dense(x))  # (B, T, N, H)
    key = np.asarray(layer.key_dense(x))
    logits = np.einsum("btnh,bsnh->bnts", query, key) / np.sqrt(4)
    logits = np.where(np.tril(np.ones((6, 6), bool)), logits, -np.inf)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(recorded[0], expected, atol=1e-5)
    layer(x)  # outside the context: nothing more is recorded
    assert len(recorded) == 2


def test_recorder_rejects_compiled_calls_and_double_marking():
    layer = BahdanauAttention(units=4)
    query, value = np.ones((2, 3, 5), "float32"), np.ones((2, 4, 6), "float32")
    with record_attention_scores([layer]) as (recorded,):
        _, weights = layer([query, value], return_attention_scores=True)
        with pytest.raises(RuntimeError, match="only records eager calls"):
            tf.function(lambda q, v: layer([q, v]))(query, value)
        with pytest.raises(ValueError, match="already recorded"):
            with record_attention_scores([layer]):
                pass
    np.testing.assert_array_equal(recorded[0], weights)
    with pytest.raises(TypeError, match="layers"):
        with record_attention_scores([keras.layers.Dense(2)]):
            pass


def test_unknown_ambiguous_and_non_attention_names(tmp_path):
    model = encoder_model()
    x = np.zeros((2, 5, 8), "float32")
    for names, message in (
        (["decoder"], "names no layer"),
        (["self_attention"], "ambiguous"),
        (["head"], "holds no attention layer"),
    ):
        logger = AttentionMapLogger(str(tmp_path), x, names)
        logger.set_model(model)
        with pytest.raises(ValueError, match="`layer_names`.*encoder_0/self_attention"):
            logger.on_train_begin()
        with pytest.raises(ValueError, match=message):
            model.fit(x, np.zeros((2, 5, 1)), epochs=1, callbacks=[logger], verbose=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"every_n_epochs": 0}, ValueError, "every_n_epochs"),
        ({"every_n_epochs": 1.5}, TypeError, "every_n_epochs"),
        ({"every_n_epochs": True}, TypeError, "every_n_epochs"),
        ({"max_examples": 0}, ValueError, "max_examples"),
        ({"max_windows": -1}, ValueError, "max_windows"),
        ({"average_heads": 1}, TypeError, "average_heads"),
        ({"normalize": "yes"}, TypeError, "normalize"),
        ({"colormap": "no_such_map"}, ValueError, "colormap"),
        ({"colormap": 3}, TypeError, "colormap"),
        ({"cell_size": 0}, ValueError, "cell_size"),
        ({"layer_names": "encoder_0"}, TypeError, "layer_names"),
        ({"layer_names": []}, TypeError, "layer_names"),
        ({"layer_names": ["a", "a"]}, ValueError, "layer_names"),
        ({"log_dir": None}, TypeError, "log_dir"),
        ({"probe_inputs": None}, ValueError, "probe_inputs"),
        ({"probe_inputs": {"a": np.zeros((2, 3)), "b": np.zeros((3, 3))}}, ValueError, "probe"),
    ],
)
def test_argument_validation(kwargs, error, match):
    arguments = {"log_dir": "logs", "probe_inputs": np.zeros((2, 5, 8)), "layer_names": ["x"]}
    with pytest.raises(error, match=match):
        AttentionMapLogger(**{**arguments, **kwargs})


def test_config_holds_the_json_arguments():
    logger = AttentionMapLogger("logs", np.zeros((2, 3)), ["encoder"], every_n_epochs=3)
    config = logger.get_config()
    assert config["layer_names"] == ["encoder"] and config["every_n_epochs"] == 3
    assert "probe_inputs" not in config
    assert keras.saving.get_registered_name(AttentionMapLogger) == "keras_seq>AttentionMapLogger"
