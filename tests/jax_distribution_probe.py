"""Run by tests/test_jax_distribution.py in a process of its own, on JAX with two virtual CPU
devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`, set before JAX starts):

    KERAS_BACKEND=jax python -m tests.jax_distribution_probe

Trains a tiny GPTCausalLM for three steps from the same weights on the same batch, on one
device, under `keras.distribution.DataParallel` and under `ModelParallel` with
`keras_seq.utils.transformer_layout_map`, and prints after `RESULTS ` one JSON object: the
devices, the three loss curves, and the sharding of a few weights under model parallelism.
"""

import json

import keras
import numpy as np

from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from keras_seq.utils import transformer_layout_map

TINY = {
    "vocabulary_size": 50,
    "num_layers": 2,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "sequence_length": 24,
    "dropout": 0.0,
}
SHARDED = (
    "decoder_layer_0/self_attention/query_dense/kernel",
    "decoder_layer_0/self_attention/output_dense/kernel",
    "decoder_layer_0/feedforward/intermediate_dense/kernel",
    "decoder_layer_0/feedforward/output_dense/kernel",
    "embedding/token_embedding/embeddings",
)
rng = np.random.default_rng(0)
ids = rng.integers(1, 50, size=(8, 9)).astype("int32")
x = {"token_ids": ids[:, :-1], "padding_mask": np.ones((8, 8), "int32")}
y = ids[:, 1:]


def train(weights=None):
    model = GPTCausalLM(GPTBackbone(**TINY))
    model(x)
    if weights is not None:
        model.set_weights(weights)
    start = [np.array(w) for w in model.get_weights()]
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False)
    return model, start, [float(loss) for loss in history.history["loss"]]


def main():
    keras.utils.set_random_seed(0)
    _, start, single = train()
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    _, _, data_parallel = train(start)
    mesh = keras.distribution.DeviceMesh((1, len(devices)), ("batch", "model"), devices)
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(
            layout_map=transformer_layout_map(mesh), batch_dim_name="batch"
        )
    )
    model, _, model_parallel = train(start)
    variables = {variable.path: variable for variable in model.variables}
    shardings = {path: str(variables[path].value.sharding.spec) for path in SHARDED}
    print(
        "RESULTS "
        + json.dumps(
            {
                "devices": devices,
                "single": single,
                "data_parallel": data_parallel,
                "model_parallel": model_parallel,
                "shardings": shardings,
            }
        )
    )


if __name__ == "__main__":
    main()
