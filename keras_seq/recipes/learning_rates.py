"""The learning-rate schedule of the recipes that warm up: linear warm-up, then cosine decay."""

import keras


def warmup_cosine_decay(peak, steps, warmup_fraction=0.1):
    """A `keras.optimizers.schedules.CosineDecay` that warms up linearly to `peak` over
    `warmup_fraction` of `steps` (at least one step), then decays to 0.

    The warm-up starts at `peak / (warmup_steps + 1)`, not 0: the first step learns, so that a
    run of a single step (a tiny data set, `--quick`) still moves the weights.

    Example:
    ```python
    from keras_seq.recipes.learning_rates import warmup_cosine_decay

    schedule = warmup_cosine_decay(1e-3, 1)
    assert abs(float(schedule(0)) - 5e-4) < 1e-9  # one warm-up step: half the peak, not 0
    assert abs(float(warmup_cosine_decay(1e-3, 100)(10)) - 1e-3) < 1e-9  # the peak
    ```
    """
    warmup_steps = max(1, int(steps * warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        peak / (warmup_steps + 1),
        max(1, steps - warmup_steps),
        warmup_target=peak,
        warmup_steps=warmup_steps,
    )
