"""Speculative decoding (`keras_seq.generation.speculative_generate`) against plain greedy.

Target: a GPT of 8 layers (hidden 256, 4 heads, feed-forward 1024, vocabulary 5,000, random
weights with a little noise so that greedy choices are not near ties). Its last 6 blocks get
zero output projections (attention and feed-forward), so their residual contributions vanish:
the target computes exactly the logits of its first 2 blocks while costing 8 blocks. The
agreeing draft is that 2-block model (the target's embeddings, first 2 blocks and final norm
copied into a 2-layer `GPTCausalLM`), so it agrees with the target at every step, a quarter
of the target's cost: the best case, which shows the most speculative decoding buys. The
disagreeing draft is an unrelated random 2-layer GPT (it almost never agrees): the cost of a
useless draft.

Greedy decoding of 64 new tokens after 16-token prompts at batch 1, XLA. The peer of every
speculative variant is the target's plain greedy `generate` (same call, same shapes); the
tokens of each speculative variant are checked equal to it before anything is timed, and its
acceptance rate is measured then (recorded in the settings and printed).

Run: `python -m benchmarks.bench_speculative [harness options: --repeats --warmup --filter
--quick --no-record --results-file --target]`.
"""

import numpy as np

from benchmarks import harness

TITLE = "Speculative decoding vs greedy with the target alone"
FULL_SIZES = {
    "vocabulary_size": 5000,
    "num_layers": 8,
    "draft_layers": 2,
    "hidden_dim": 256,
    "num_heads": 4,
    "intermediate_dim": 1024,
    "prompt_length": 16,
    "new_tokens": 64,
    "batch": 1,
    "agreeing_draft_tokens": (2, 4, 8),
    "disagreeing_draft_tokens": (4,),
}
QUICK_SIZES = {
    "vocabulary_size": 50,
    "num_layers": 4,
    "draft_layers": 1,
    "hidden_dim": 16,
    "num_heads": 2,
    "intermediate_dim": 32,
    "prompt_length": 3,
    "new_tokens": 8,
    "batch": 1,
    "agreeing_draft_tokens": (2,),
    "disagreeing_draft_tokens": (2,),
}
GREEDY_NAME = "keras_seq GPT greedy b1 XLA"
ACCEPTANCE = {}


def _gpt(sizes, num_layers, sequence_length, seed):
    import keras

    from keras_seq.models import GPTBackbone
    from keras_seq.models import GPTCausalLM

    keras.utils.set_random_seed(seed)
    model = GPTCausalLM(
        GPTBackbone(
            vocabulary_size=sizes["vocabulary_size"],
            num_layers=num_layers,
            hidden_dim=sizes["hidden_dim"],
            num_heads=sizes["num_heads"],
            intermediate_dim=sizes["intermediate_dim"],
            sequence_length=sequence_length,
            dropout=0.0,
        )
    )
    rng = np.random.default_rng(seed)
    model.set_weights(
        [w + rng.normal(0.0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    return model


def models(sizes, sequence_length):
    """(target, agreeing draft, disagreeing draft)."""
    target = _gpt(sizes, sizes["num_layers"], sequence_length, seed=0)
    kept = sizes["draft_layers"]
    for layer in target.backbone.decoder_layers[kept:]:
        for weight in layer.weights:
            if "output_dense" in weight.path:  # Attention and feed-forward outputs.
                weight.assign(np.zeros(weight.shape, weight.dtype))
    agreeing = _gpt(sizes, kept, sequence_length, seed=1)
    for name in ["embedding", "layer_norm"] + [f"decoder_layer_{i}" for i in range(kept)]:
        source = target.backbone.get_layer(name)
        agreeing.backbone.get_layer(name).set_weights(source.get_weights())
    disagreeing = _gpt(sizes, kept, sequence_length, seed=2)
    return target, agreeing, disagreeing


def build(quick):
    import tensorflow as tf

    from keras_seq.generation import generate
    from keras_seq.generation import speculative_generate

    tf.get_logger().setLevel("ERROR")
    sizes = QUICK_SIZES if quick else FULL_SIZES
    new_tokens, batch = sizes["new_tokens"], sizes["batch"]
    most_draft_tokens = max(sizes["agreeing_draft_tokens"] + sizes["disagreeing_draft_tokens"])
    sequence_length = sizes["prompt_length"] + new_tokens + most_draft_tokens
    target, agreeing, disagreeing = models(sizes, sequence_length)
    prompt = np.random.default_rng(0).integers(
        1, sizes["vocabulary_size"], (batch, sizes["prompt_length"])
    )
    prompt = prompt.astype("int32")
    expected = np.asarray(generate(target, prompt, new_tokens))
    variants = [
        harness.Variant(
            GREEDY_NAME,
            lambda: generate(target, prompt, new_tokens),
            items=batch * new_tokens,
            item_unit="tok",
        )
    ]
    ACCEPTANCE.clear()
    drafts = [("agreeing", agreeing, k) for k in sizes["agreeing_draft_tokens"]]
    drafts += [("disagreeing", disagreeing, k) for k in sizes["disagreeing_draft_tokens"]]
    for label, draft, draft_tokens in drafts:
        name = f"keras_seq speculative K={draft_tokens} {label} draft b1 XLA"
        tokens, acceptance = speculative_generate(
            target, draft, prompt, new_tokens, num_draft_tokens=draft_tokens, return_acceptance=True
        )
        if not np.array_equal(np.asarray(tokens), expected):
            raise RuntimeError(f"{name}: tokens differ from greedy decoding of the target.")
        ACCEPTANCE[name] = (
            float(acceptance["acceptance_rate"]),
            int(acceptance["target_calls"]),
        )
        variants.append(
            harness.Variant(
                name,
                (
                    lambda d, k: (
                        lambda: speculative_generate(
                            target, d, prompt, new_tokens, num_draft_tokens=k
                        )
                    )
                )(draft, draft_tokens),
                peer=GREEDY_NAME,
                items=batch * new_tokens,
                item_unit="tok",
            )
        )
    settings = dict(sizes)
    settings.update(
        {
            "dtype": "float32",
            "target": f"{sizes['num_layers']} layers, the last "
            f"{sizes['num_layers'] - sizes['draft_layers']} with zero output projections",
            "drafts": f"agreeing: the target's first {sizes['draft_layers']} layers; "
            "disagreeing: a random GPT of as many layers",
            "acceptance (rate, target calls)": "; ".join(
                f"{name.split(' b1')[0]}: {rate:.3f}, {calls}"
                for name, (rate, calls) in ACCEPTANCE.items()
            ),
        }
    )
    return variants, settings


def speed_ups(results):
    """Lines giving each speculative variant's speed-up over greedy and its acceptance."""
    by_name = {r.name: r for r in results}
    lines = []
    for result in results:
        if result.name not in ACCEPTANCE or result.peer not in by_name:
            continue
        rate, calls = ACCEPTANCE[result.name]
        speed_up = by_name[result.peer].median / result.median
        lines.append(
            f"- {result.name}: {speed_up:.2f}x greedy's speed, acceptance {rate:.3f}, "
            f"{calls} target calls for the new tokens after the first"
        )
    return "\n".join(lines) + "\n" if lines else ""


def main(argv=None):
    args = harness.parse_args(argv, default_repeats=15, default_warmup=1)
    results = harness.main(TITLE, build, argv=argv, default_repeats=15, default_warmup=1)
    lines = speed_ups(results)
    print("Speed-up over greedy decoding with the target alone:\n" + lines)
    if not args.no_record and lines:
        harness.append_section(
            "Speed-up over greedy decoding with the target alone (greedy median / ours):\n\n"
            + lines,
            args.results_file,
        )
    return results


if __name__ == "__main__":
    main()
