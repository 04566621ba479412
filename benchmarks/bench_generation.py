"""keras_seq GPTCausalLM generation against keras_hub's GPT2CausalLM with the same weights.

Greedy decoding of 128 new tokens after a 16-token prompt, at batch 1 and 8, with the decoding
loop compiled by XLA (`jit_compile=True`) and without (a plain `tf.function`), on a small
configuration (4 layers, hidden 256, 4 heads, feed-forward 1024, vocabulary 5,000, random
weights copied from keras_hub's backbone into our `GPTBackbone`). Both produce the same
tokens (checked first). keras_hub's model has no preprocessor, so its input is the prompt padded to
the full length with a padding mask, and `stop_token_ids=None` (what it needs without one).

Beam search: ours at 1, 2, 4 and 8 beams (batch 1, XLA) with our greedy run as the peer, so the
ratio is the cost of K beams relative to one sequence (divide by K for the cost per beam),
and keras_hub's `BeamSampler` with 4 beams as the peer of ours with 4 beams.

Run: `python -m benchmarks.bench_generation [harness options: --repeats --warmup --filter
--quick --no-record --results-file --target]`.
"""

import numpy as np

from benchmarks import harness

TITLE = "GPT generation vs keras_hub GPT2CausalLM"
FULL_SIZES = {
    "vocabulary_size": 5000,
    "num_layers": 4,
    "hidden_dim": 256,
    "num_heads": 4,
    "intermediate_dim": 1024,
    "prompt_length": 16,
    "new_tokens": 128,
    "batches": (1, 8),
    "beams": (1, 2, 4, 8),
}
QUICK_SIZES = {
    "vocabulary_size": 50,
    "num_layers": 1,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "prompt_length": 3,
    "new_tokens": 4,
    "batches": (1, 2),
    "beams": (1, 2),
}
MODES = {"graph": False, "XLA": True}


def _models(sizes):
    import keras
    import keras_hub

    from keras_seq.models import GPTBackbone
    from keras_seq.models import GPTCausalLM

    total = sizes["prompt_length"] + sizes["new_tokens"]
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=sizes["vocabulary_size"],
        num_layers=sizes["num_layers"],
        num_heads=sizes["num_heads"],
        hidden_dim=sizes["hidden_dim"],
        intermediate_dim=sizes["intermediate_dim"],
        max_sequence_length=total,
        dropout=0.0,
    )
    ours = GPTCausalLM(
        GPTBackbone(
            vocabulary_size=sizes["vocabulary_size"],
            num_layers=sizes["num_layers"],
            hidden_dim=sizes["hidden_dim"],
            num_heads=sizes["num_heads"],
            intermediate_dim=sizes["intermediate_dim"],
            sequence_length=total,
            dropout=0.0,
        )
    )
    ours.backbone.set_weights(backbone.get_weights())
    return backbone, ours


def _peer(backbone, sampler, jit_compile):
    import keras_hub

    peer = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    peer.compile(sampler=sampler, jit_compile=jit_compile)
    return peer


def _padded(prompt, total):
    token_ids = np.zeros((prompt.shape[0], total), "int32")
    token_ids[:, : prompt.shape[1]] = prompt
    padding_mask = np.zeros_like(token_ids)
    padding_mask[:, : prompt.shape[1]] = 1
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def build(quick):
    import keras_hub
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    sizes = QUICK_SIZES if quick else FULL_SIZES
    new_tokens, total = sizes["new_tokens"], sizes["prompt_length"] + sizes["new_tokens"]
    backbone, ours = _models(sizes)
    rng = np.random.default_rng(0)
    variants = []
    for batch in sizes["batches"]:
        prompt = rng.integers(1, sizes["vocabulary_size"], (batch, sizes["prompt_length"]))
        prompt = prompt.astype("int32")
        padded = _padded(prompt, total)
        for mode, jit_compile in MODES.items():
            peer = _peer(backbone, "greedy", jit_compile)
            expected = np.asarray(peer.generate(padded, stop_token_ids=None)["token_ids"])
            actual = np.asarray(ours.generate(prompt, new_tokens, jit_compile=jit_compile))
            if not np.array_equal(expected, actual):
                raise RuntimeError(f"batch {batch} {mode}: greedy tokens differ from keras_hub.")
            peer_name = f"keras_hub GPT2CausalLM greedy b{batch} {mode}"
            variants += [
                harness.Variant(
                    peer_name,
                    (lambda p, x: lambda: p.generate(x, stop_token_ids=None))(peer, padded),
                    items=batch * new_tokens,
                    item_unit="tok",
                ),
                harness.Variant(
                    f"keras_seq GPT greedy b{batch} {mode}",
                    (lambda x, j: lambda: ours.generate(x, new_tokens, jit_compile=j))(
                        prompt, jit_compile
                    ),
                    peer=peer_name,
                    items=batch * new_tokens,
                    item_unit="tok",
                ),
            ]
    prompt = rng.integers(1, sizes["vocabulary_size"], (1, sizes["prompt_length"]))
    prompt = prompt.astype("int32")
    greedy_name = "keras_seq GPT greedy b1 XLA"
    for beams in sizes["beams"]:
        variants.append(
            harness.Variant(
                f"keras_seq GPT beam{beams} b1 XLA (peer: our greedy)",
                (lambda k: lambda: ours.generate(prompt, new_tokens, strategy="beam", num_beams=k))(
                    beams
                ),
                peer=greedy_name,
                items=new_tokens,
                item_unit="tok",
            )
        )
    beams = sizes["beams"][-1] if quick else 4
    beam_peer = _peer(backbone, keras_hub.samplers.BeamSampler(num_beams=beams), True)
    padded = _padded(prompt, total)
    beam_peer_name = f"keras_hub GPT2CausalLM beam{beams} b1 XLA"
    variants += [
        harness.Variant(
            beam_peer_name,
            lambda: beam_peer.generate(padded, stop_token_ids=None),
            items=new_tokens,
            item_unit="tok",
        ),
        harness.Variant(
            f"keras_seq GPT beam{beams} b1 XLA",
            lambda: ours.generate(prompt, new_tokens, strategy="beam", num_beams=beams),
            peer=beam_peer_name,
            items=new_tokens,
            item_unit="tok",
        ),
    ]
    settings = {k: v for k, v in sizes.items()}
    settings.update(
        {
            "dtype": "float32",
            "weights": "random, keras_hub backbone's copied into ours; greedy tokens checked equal",
            "peer input": "prompt padded to the full length + padding mask, stop_token_ids=None",
        }
    )
    return variants, settings


if __name__ == "__main__":
    harness.main(TITLE, build, default_repeats=5, default_warmup=1)
