"""check_fit_data: clear errors for data that does not fit the model, before Keras traces."""

import dataclasses
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seq.layers import LSTMCell
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from keras_seq.models import ViTBackbone
from keras_seq.models import ViTImageClassifier
from keras_seq.utils.fit_checks import check_fit_data
from tests.model_families import LENGTH
from tests.model_families import VOCABULARY
from tests.model_families import make_case


def _dataset(*parts, batch_size=2, drop_remainder=False):
    data = parts[0] if len(parts) == 1 else tuple(parts)
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size, drop_remainder)


@pytest.fixture(scope="module")
def vit():
    # The family's data and loss (tests/model_families.py), on a ViTImageClassifier.
    case = dataclasses.replace(
        make_case("vit"),
        build_model=lambda: ViTImageClassifier(
            ViTBackbone(
                image_shape=(16, 16, 3),
                patch_size=4,
                num_layers=1,
                hidden_dim=16,
                num_heads=2,
                intermediate_dim=32,
            ),
            num_classes=5,
        ),
    )
    return case, case.build()


@pytest.fixture(scope="module")
def gpt():
    # The family's data and loss, on a GPTCausalLM.
    case = dataclasses.replace(
        make_case("gpt"),
        build_model=lambda: GPTCausalLM(
            GPTBackbone(
                VOCABULARY,
                num_layers=2,
                hidden_dim=16,
                num_heads=2,
                intermediate_dim=32,
                sequence_length=LENGTH,
                dropout=0.0,
            )
        ),
    )
    return case, case.build()


def test_matching_data_passes(vit, gpt):
    for case, model in (vit, gpt):
        check_fit_data(model, case.x, case.y, batch_size=2)
        check_fit_data(model, _dataset(case.x, case.y))
        check_fit_data(model, _dataset(case.x, case.y, np.ones(len(case.y), "float32")))


def test_dataset_of_dicts_has_no_targets(vit):
    case, model = vit
    dataset = _dataset({"image": case.x, "label": case.y})
    with pytest.raises(ValueError, match=r"yields no\s+targets.*'image'.*dataset\.map"):
        check_fit_data(model, dataset)
    # `fit` is Keras' own (it says: Missing data for input "images"); the check is a call.
    assert type(model).fit is keras.Model.fit


def test_dataset_of_inputs_alone_has_no_targets(vit):
    case, model = vit
    with pytest.raises(ValueError, match="yields no targets"):
        check_fit_data(model, _dataset(case.x))
    with pytest.raises(ValueError, match="got no targets: received y=None"):
        check_fit_data(model, case.x)


def test_input_keys_and_shapes(vit, gpt):
    case, model = gpt
    extra = {**case.x, "segment_ids": case.x["token_ids"]}
    with pytest.raises(ValueError, match=r"unexpected keys \['segment_ids'\]"):
        check_fit_data(model, extra, case.y)
    with pytest.raises(ValueError, match=r"validation_data.*unexpected keys \['segment_ids'\]"):
        check_fit_data(model, case.x, case.y, validation_data=(extra, case.y))
    renamed = {"tokens": case.x["token_ids"], "padding_mask": case.x["padding_mask"]}
    with pytest.raises(ValueError, match=r"missing keys \['token_ids'\] and unexpected"):
        check_fit_data(model, _dataset(renamed, case.y))
    with pytest.raises(ValueError, match="takes a dict of inputs"):
        check_fit_data(model, case.x["token_ids"], case.y)
    case, model = vit
    big = np.zeros((4, 32, 32, 3), "float32")
    with pytest.raises(ValueError, match=r"has shape \(None, 32, 32, 3\).*expects"):
        check_fit_data(model, _dataset(big, case.y))
    with pytest.raises(ValueError, match="takes one input"):
        check_fit_data(model, [case.x, case.x], case.y)


def _stateful_model(batch_size=2):
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(batch_size, None, 3)),
            keras.layers.RNN(LSTMCell(4), return_sequences=True, stateful=True, name="rnn"),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    return model


def test_stateful_rnn_batches():
    model = _stateful_model()
    x, y = np.zeros((4, 5, 3), "float32"), np.zeros((4, 5, 1), "float32")
    check_fit_data(model, x, y, batch_size=2)
    check_fit_data(model, _dataset(x, y, batch_size=2, drop_remainder=True))
    with pytest.raises(ValueError, match=r"'rnn' was built for batches of 2.*`batch_size` is 4"):
        check_fit_data(model, x, y, batch_size=4)
    with pytest.raises(ValueError, match=r"batches of 2, but the batch size of the dataset"):
        check_fit_data(model, _dataset(x, y, batch_size=4, drop_remainder=True))
    with pytest.raises(ValueError, match=r"holds 3 examples, leaving a last batch of 1"):
        check_fit_data(model, x[:3], y[:3], batch_size=2)
    # Keras itself trains on that last batch of 1 without a word (broadcast against the
    # states of 2): the silent case the check exists for.
    model.fit(x[:3], y[:3], batch_size=2, verbose=0)


def test_stateful_rnn_without_fixed_batch_size():
    # Keras refuses to build one in a functional model; a subclassed model builds lazily.
    with pytest.raises(ValueError, match="batch size must be static"):
        keras.Sequential([keras.Input((None, 3)), keras.layers.RNN(LSTMCell(4), stateful=True)])

    class Streaming(keras.Model):
        def __init__(self):
            super().__init__()
            self.rnn = keras.layers.RNN(LSTMCell(4), stateful=True, name="streaming_rnn")

    model = Streaming()
    with pytest.raises(ValueError, match="'streaming_rnn' has no fixed batch size"):
        check_fit_data(model, np.zeros((4, 5, 3)), np.zeros((4, 4)), batch_size=2)


SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from tests.model_families import make_case
    from keras_seq.utils import check_fit_data

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    case = make_case("rnn_language_model")
    with strategy.scope():
        model = case.build()
    for data, batch_size in [((case.x, case.y), 3), ((tf.data.Dataset.from_tensor_slices(
            (case.x, case.y)).batch(3, drop_remainder=True),), None)]:
        try:
            check_fit_data(model, *data, batch_size=batch_size)
            print("NO ERROR")
        except ValueError as error:
            print("ERROR", str(error).replace("\\n", " "))
    model.fit(case.x, case.y, batch_size=4, verbose=0)
    print("DIVISIBLE OK")
    """
)


def test_global_batch_not_divisible_by_replicas():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith(("ERROR", "NO ERROR"))]
    assert len(errors) == 2, result.stdout[-2000:] + result.stderr[-4000:]
    assert "`batch_size` is 3, and the strategy has 2 replicas" in errors[0]
    assert "the batch size of the dataset `x` is 3" in errors[1]
    assert "DIVISIBLE OK" in lines
