"""Generation for real workloads: prompts of different lengths in one batch, and streaming.

1. **Mixed-length batch**: 8 prompts of 4 to 64 tokens (evenly spaced lengths, random ids),
   128 new tokens each, greedy, XLA. The checkpoint is a Hugging Face GPT-2 directory with
   random weights at bench_generation's small configuration (4 layers, hidden 256, 4 heads,
   feed-forward 1024; the hf_gpt2 fixture's vocabulary of 400; 192 positions), written by
   `bench_text.write_gpt2_checkpoint`, so every library loads the same weights:
   - keras_seq `GPTCausalLM.from_preset`: `generate(list_of_id_lists, 128)` (left padding to
     the 64 bucket, per-row positions);
   - keras_hub `GPT2CausalLM.from_preset` without preprocessor, with its padding mask: the
     prompts right-padded to 64 + 128 = 192 with `padding_mask`; keras_hub decodes from the
     shortest prompt to the full length, so every row gets at least 128 new tokens (rows with
     shorter prompts get more, which is how its padding mask works);
   - transformers' `GPT2LMHeadModel.generate` on CPU (left padding, attention mask,
     `max_new_tokens=128`, `min_new_tokens=128`), where torch and transformers are installed.
   The first 128 new tokens of every row are checked equal across the libraries before
   timing. Throughput counts the 8 x 128 requested tokens.
2. **Streaming overhead**: keras_seq greedy, batch 1, 16-token prompt, 128 new tokens, with
   `generate`'s default compilation (XLA): `generate(..., streamer=callback)` (a no-op
   callback; the loop runs in Python around the compiled step) against the same call
   without a streamer (one compiled loop); with `stream_interval=8` (eight steps per
   compiled call, tokens handed over in order after each call); against transformers'
   `generate(..., streamer=...)` (a no-op streamer object) and the plain call against
   transformers' plain `generate`, where torch is installed. A last row times a plain
   TensorFlow graph (`jit_compile=False`) against the default. With `--gpt2-small`, the
   streaming rows alone at GPT-2 small's size (12 layers, hidden 768, 12 heads, feed-forward
   3072; random weights), where each step's compute, not the per-call cost, dominates.

Run: `python -m benchmarks.bench_mixed_generation [--gpt2-small] [harness options: --repeats
--warmup --filter --quick --no-record --results-file --target]`.
"""

import argparse
import tempfile

import numpy as np

from benchmarks import harness
from benchmarks.bench_text import torch_available
from benchmarks.bench_text import write_gpt2_checkpoint

TITLE = "Mixed-length prompts and streaming vs keras_hub GPT2CausalLM and transformers"
FULL_SIZES = {
    "num_layers": 4,
    "hidden_dim": 256,
    "num_heads": 4,
    "intermediate_dim": 1024,
    "positions": 192,
    "prompt_lengths": (4, 12, 20, 28, 36, 44, 52, 64),
    "new_tokens": 128,
    "stream_prompt_length": 16,
}
QUICK_SIZES = {
    "num_layers": 1,
    "hidden_dim": 32,
    "num_heads": 2,
    # keras_hub's GPT-2 converter takes 4 x hidden as the feed-forward width.
    "intermediate_dim": 128,
    "positions": 48,
    "prompt_lengths": (2, 5, 9),
    "new_tokens": 8,
    "stream_prompt_length": 4,
}
# GPT-2 small's shape (streaming rows only).
GPT2_SMALL_SIZES = dict(
    FULL_SIZES, num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072
)
_KEEP = []  # Temporary directories, removed when the process ends.


def build(quick, gpt2_small=False):
    import keras_hub
    import tensorflow as tf

    from keras_seq.models import GPTCausalLM

    tf.get_logger().setLevel("ERROR")
    sizes = QUICK_SIZES if quick else GPT2_SMALL_SIZES if gpt2_small else FULL_SIZES
    temporary = tempfile.TemporaryDirectory(prefix="bench_mixed_gpt2_")
    _KEEP.append(temporary)
    directory = write_gpt2_checkpoint(temporary.name, sizes)
    ours = GPTCausalLM.from_preset(str(directory))
    vocabulary_size = ours.backbone.vocabulary_size
    new_tokens, lengths = sizes["new_tokens"], sizes["prompt_lengths"]
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, vocabulary_size - 1, length).tolist() for length in lengths]
    longest = max(lengths)
    total = longest + new_tokens

    settings = {k: str(v) for k, v in sizes.items()}
    model = None
    if torch_available():
        import transformers

        model = transformers.GPT2LMHeadModel.from_pretrained(str(directory))
        model.eval()
    if gpt2_small:
        settings["rows"] = "streaming only (--gpt2-small)"
        variants, extra = streaming_variants(ours, model, sizes, rng)
        settings.update(extra)
        return variants, settings

    peer = keras_hub.models.GPT2CausalLM.from_preset(str(directory), preprocessor=None)
    peer.compile(sampler="greedy", jit_compile=True)
    token_ids = np.zeros((len(rows), total), "int32")
    padding_mask = np.zeros((len(rows), total), bool)
    for index, row in enumerate(rows):
        token_ids[index, : len(row)] = row
        padding_mask[index, : len(row)] = True
    padded = {"token_ids": token_ids, "padding_mask": padding_mask}

    expected = ours.generate(rows, new_tokens, stop_token_id=None)
    theirs = np.asarray(peer.generate(padded, stop_token_ids=None)["token_ids"])
    for index, (row, output) in enumerate(zip(rows, expected)):
        if theirs[index, : len(row) + new_tokens].tolist() != output:
            raise RuntimeError(f"prompt {index}: keras_seq's tokens differ from keras_hub's.")

    batch_items = len(rows) * new_tokens
    peer_name = f"keras_hub GPT2CausalLM padding_mask b{len(rows)} greedy XLA"
    variants = [
        harness.Variant(
            peer_name,
            lambda: peer.generate(padded, stop_token_ids=None),
            items=batch_items,
            item_unit="tok",
        ),
        harness.Variant(
            f"keras_seq GPTCausalLM lists b{len(rows)} greedy XLA",
            lambda: ours.generate(rows, new_tokens, stop_token_id=None),
            peer=peer_name,
            items=batch_items,
            item_unit="tok",
        ),
    ]
    if model is not None:
        import torch

        left = np.zeros((len(rows), longest), "int64")
        mask = np.zeros((len(rows), longest), "int64")
        for index, row in enumerate(rows):
            left[index, longest - len(row) :] = row
            mask[index, longest - len(row) :] = 1
        left, mask = torch.from_numpy(left), torch.from_numpy(mask)

        def hf_generate():
            with torch.no_grad():
                return model.generate(
                    left,
                    attention_mask=mask,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                ).numpy()

        hf_tokens = hf_generate()
        for index, output in enumerate(expected):
            if hf_tokens[index, longest:].tolist() != output[len(rows[index]) :]:
                raise RuntimeError(f"prompt {index}: keras_seq's tokens differ from transformers'.")
        hf_name = f"transformers GPT2LMHeadModel left padding b{len(rows)} greedy CPU"
        variants += [
            harness.Variant(hf_name, hf_generate, items=batch_items, item_unit="tok"),
            harness.Variant(
                f"keras_seq GPTCausalLM lists b{len(rows)} greedy XLA (peer: HF)",
                lambda: ours.generate(rows, new_tokens, stop_token_id=None),
                peer=hf_name,
                items=batch_items,
                item_unit="tok",
            ),
        ]
    else:
        print("torch/transformers not installed: the transformers peer is skipped.")
        settings["transformers peer"] = "skipped (torch/transformers not installed)"

    more, extra = streaming_variants(ours, model, sizes, rng)
    settings.update(extra)
    return variants + more, settings


def streaming_variants(ours, model, sizes, rng):
    """The streaming rows: `(variants, settings)`; `model` is transformers' or `None`."""
    new_tokens = sizes["new_tokens"]
    variants, settings = [], {}
    vocabulary_size = ours.backbone.vocabulary_size
    prompt = rng.integers(1, vocabulary_size - 1, (1, sizes["stream_prompt_length"]))
    prompt = prompt.astype("int32")
    plain_tokens = np.asarray(ours.generate(prompt, new_tokens))
    for interval in (1, 8):
        streamed = []
        stream_tokens = ours.generate(
            prompt, new_tokens, streamer=streamed.append, stream_interval=interval
        )
        if not np.array_equal(np.asarray(stream_tokens), plain_tokens) or not np.array_equal(
            np.stack(streamed, axis=1), plain_tokens[:, prompt.shape[1] :]
        ):
            raise RuntimeError(f"Streamed tokens (stream_interval={interval}) differ.")
    mode = "XLA"  # what `jit_compile=None` compiles with on TensorFlow
    plain_name = f"keras_seq GPTCausalLM greedy b1 {mode} (one compiled loop)"
    if model is not None:
        import torch

        class NoOpStreamer:  # transformers' streamer protocol: put() per step, end()
            def put(self, value):
                pass

            def end(self):
                pass

        torch_prompt = torch.from_numpy(prompt.astype("int64"))

        def hf_generate(streamer=None):
            with torch.no_grad():
                return model.generate(
                    torch_prompt,
                    attention_mask=torch.ones_like(torch_prompt),
                    max_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                    streamer=streamer,
                ).numpy()

        def hf_stream():
            return hf_generate(streamer=NoOpStreamer())

        # Both stop at the checkpoint's end token, if it comes: compare what HF produced.
        hf_new = hf_stream()[0, prompt.shape[1] :]
        if hf_new.tolist() != plain_tokens[0, prompt.shape[1] :][: len(hf_new)].tolist():
            raise RuntimeError("transformers' streamed tokens differ from keras_seq's.")

        hf_plain_name = "transformers GPT2LMHeadModel b1 greedy CPU"
        hf_stream_name = "transformers GPT2LMHeadModel b1 greedy CPU streamer"
        variants += [
            harness.Variant(hf_plain_name, hf_generate, items=new_tokens, item_unit="tok"),
            harness.Variant(
                f"keras_seq GPTCausalLM greedy b1 {mode} (peer: HF)",
                lambda: ours.generate(prompt, new_tokens),
                peer=hf_plain_name,
                items=new_tokens,
                item_unit="tok",
            ),
            harness.Variant(hf_stream_name, hf_stream, items=new_tokens, item_unit="tok"),
            harness.Variant(
                f"keras_seq GPTCausalLM greedy b1 {mode} streamer (peer: HF streamer)",
                lambda: ours.generate(prompt, new_tokens, streamer=lambda tokens: None),
                peer=hf_stream_name,
                items=new_tokens,
                item_unit="tok",
            ),
        ]
    variants += [
        harness.Variant(
            plain_name,
            lambda: ours.generate(prompt, new_tokens),
            items=new_tokens,
            item_unit="tok",
        ),
        harness.Variant(
            f"keras_seq GPTCausalLM greedy b1 {mode} streamer",
            lambda: ours.generate(prompt, new_tokens, streamer=lambda tokens: None),
            peer=plain_name,
            items=new_tokens,
            item_unit="tok",
        ),
        harness.Variant(
            f"keras_seq GPTCausalLM greedy b1 {mode} streamer stream_interval=8",
            lambda: ours.generate(
                prompt, new_tokens, streamer=lambda tokens: None, stream_interval=8
            ),
            peer=plain_name,
            items=new_tokens,
            item_unit="tok",
        ),
    ]
    variants.append(
        harness.Variant(
            "keras_seq GPTCausalLM greedy b1 graph (jit_compile=False)",
            lambda: ours.generate(prompt, new_tokens, jit_compile=False),
            peer=plain_name,
            items=new_tokens,
            item_unit="tok",
        )
    )
    settings.update(
        {
            "checkpoint": "HF GPT-2 with random weights (bench_text.write_gpt2_checkpoint)",
            "check": "first new tokens of every row equal across libraries (greedy)",
        }
    )
    return variants, settings


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Mixed-length and streaming generation benchmark; also takes the "
        "harness options (--repeats, --warmup, --filter, --quick, --no-record, "
        "--results-file, --target).",
        add_help=False,
    )
    parser.add_argument(
        "--gpt2-small", action="store_true", help="streaming rows alone, at GPT-2 small's size"
    )
    args, rest = parser.parse_known_args(argv)
    title = TITLE + (" (GPT-2 small size, streaming)" if args.gpt2_small else "")
    return harness.main(
        title,
        lambda quick: build(quick, gpt2_small=args.gpt2_small),
        argv=rest,
        default_repeats=10,
        default_warmup=1,
    )


if __name__ == "__main__":
    main()
