"""The warmup then inverse-square-root learning rate of "Attention Is All You Need"."""

import keras
from keras import ops

from keras_seq.api import keras_seq_export
from keras_seq.utils.validation import validate_positive_float
from keras_seq.utils.validation import validate_positive_int


@keras_seq_export
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then decay with the inverse square root of the step (Vaswani et al.).

    `lrate = scale * hidden_dim**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)` for the n-th
    update, n = 1, 2, ...: the rate grows linearly for `warmup_steps` updates, peaks at
    `scale * (hidden_dim * warmup_steps)**-0.5` and then decays as `n**-0.5`. The paper pairs
    it with `Adam(beta_1=0.9, beta_2=0.98, epsilon=1e-9)`.

    Step 0: Keras optimizers call the schedule with their `iterations` counter, which is `0`
    for the first update, while the paper counts updates from 1. The schedule therefore
    evaluates the formula at `n = step + 1` (as the Annotated Transformer and
    tensor2tensor's "step + 1" do): the first update uses `lrate(1)` instead of the
    formula's value at 0, which is `0` (a wasted first step, with `inf` inside the `min`),
    and the peak is reached at `step = warmup_steps - 1`, the `warmup_steps`-th update.
    Every step, including 0, gives a finite positive rate. Pure `keras.ops`, so it runs
    inside `tf.function` and XLA-compiled train steps.

    Args:
        hidden_dim: int. The model width d (`d_model` in the paper).
        warmup_steps: int. Number of warmup updates. Defaults to `4000`.
        scale: float > 0. Multiplier of the whole rate (tensor2tensor's
            `learning_rate_constant`). Defaults to `1.0`.

    Call arguments:
        step: int or scalar tensor. The optimizer's 0-based `iterations`.

    Returns:
        float32 scalar tensor: the rate for update number `step + 1`.

    Example:
    ```python
    schedule = keras_seq.schedules.TransformerSchedule(hidden_dim=512, warmup_steps=4000)
    optimizer = keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    peak = float(schedule(3999))  # update number 4000
    np.testing.assert_allclose(peak, (512 * 4000) ** -0.5, rtol=1e-6)
    assert float(schedule(0)) < peak and float(schedule(20000)) < peak
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), section 5.3.
    """

    def __init__(self, hidden_dim, warmup_steps=4000, scale=1.0):
        hidden_dim = validate_positive_int("hidden_dim", hidden_dim)
        warmup_steps = validate_positive_int("warmup_steps", warmup_steps)
        scale = validate_positive_float("scale", scale)
        super().__init__()
        self.hidden_dim = hidden_dim
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step):
        # The constants in Python floats (double precision), then one cast.
        peak_factor = self.scale * self.hidden_dim**-0.5
        warmup_slope = float(self.warmup_steps) ** -1.5
        n = ops.cast(step, "float32") + 1.0
        return peak_factor * ops.minimum(ops.rsqrt(n), n * warmup_slope)

    def get_config(self):
        return {
            "hidden_dim": self.hidden_dim,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
        }
