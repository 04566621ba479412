"""The decoding strategies of `keras_seq.generation.generate` and the options each one reads.

One table for the library and the `keras-seq generate` command, which lists the strategies
and checks the options before it imports TensorFlow. This module imports nothing.
"""

STRATEGIES = ("greedy", "beam", "sample", "top_k", "top_p")

# The options each strategy reads; passing any other one is an error, not silently ignored.
STRATEGY_OPTIONS = {
    "greedy": (),
    "beam": ("num_beams", "length_penalty", "early_stopping"),
    "sample": ("temperature", "seed"),
    "top_k": ("temperature", "top_k", "seed"),
    "top_p": ("temperature", "top_k", "top_p", "seed"),
}
# The value of an option that is not given (`seed`: none, a random seed). With "top_p",
# `top_k` is an optional extra bound without a default.
OPTION_DEFAULTS = {
    "num_beams": 4,
    "length_penalty": 0.0,
    "early_stopping": "exact",
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 0.9,
}
# The values of `early_stopping` (beam search): our exact rule and Hugging Face's two.
EARLY_STOPPING = ("exact", False, True)
