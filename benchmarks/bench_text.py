"""Text: tokenization throughput against Hugging Face's `tokenizers`, and generation from a
checkpoint with text prompts against keras_hub's GPT2CausalLM.

1. **Tokenization** of a fixed corpus (English sentences made from templates and word lists
   with a seeded generator: `make_corpus`), by the tokenizers `from_preset` gives keras_seq's
   models for the checkpoint fixtures `tests/models/checkpoint_fixtures/hf_gpt2` (keras_hub's
   byte-level BPE `GPT2Tokenizer`) and `hf_bert` (`keras_seq.models.BERTTokenizer`: keras_hub's
   WordPiece `BertTokenizer` plus [CLS]/[SEP] in graphs and tf.data, and for Python strings
   outside a graph Hugging Face's Rust WordPiece built from the same vocabulary, so its eager
   rows measure that wrapper against the peer), each run three ways:

   - `eager list`: `tokenizer(corpus)` on a Python list of strings (Python lists of ids back),
   - `tf.data batch256`: `Dataset.from_tensor_slices(corpus).batch(256).map(tokenizer)`:
     `new pass` iterates it to the end with a new iterator each call (what an epoch costs,
     iterator creation included), `steady` pulls the same number of batches from one
     iterator kept across calls (over `.repeat()`, with tf.data's autotuning and prefetch
     injection off, so that it does not compute batches ahead while other variants run),
     and `iter() alone` (no peer) times creating the iterator,
   - `eager 1 text`: one sentence per call (the per-call overhead),

   against the peer, `tokenizers.Tokenizer.from_file(<fixture>/tokenizer.json)`:
   `encode_batch(corpus)` (ids as Python lists; it runs on all cores through Rayon) and
   `encode(text)` for one sentence. Before anything is timed, the ids of every sentence are
   compared (the eager list and the tf.data output with HF's; HF's BERT ids include the
   [CLS]/[SEP] its post-processor adds); mismatches are printed and counted in the settings.
   Throughput is in texts/s; tokens/s (texts/s times the corpus' tokens per text) are
   printed after the table and recorded beneath it. keras_hub's BPE tokenizer caches the
   words it has seen, and HF's BPE has a cache too, so after the warm-up both tokenize a
   corpus whose words they have met.

2. **Generation from a checkpoint, text in and text out**: greedy, 64 new tokens after
   prompts of 16 tokens, batch 1 and 8, XLA on both sides. The checkpoint is written to a
   temporary directory as Hugging Face's GPT-2 (`config.json`, `model.safetensors` with random
   weights under HF's names, the fixture's tokenizer files) at bench_generation's small
   configuration (4 layers, hidden 256, 4 heads, feed-forward 1024) with the fixture's
   vocabulary (400) and 128 positions (the fixture itself has 64, too few for 16 + 64; `--quick`
   uses the fixture as it is). Both libraries load that directory with `from_preset`:
   `keras_seq.models.GPTCausalLM` (its tokenizer from the checkpoint) and
   `keras_hub.models.GPT2CausalLM` (with its own `GPT2CausalLMPreprocessor`, rebuilt with
   `sequence_length` = prompt + new tokens and without a start token, since Hugging Face's
   GPT-2 prompts have none: keras_hub 0.32's `generate_preprocess` ignores
   `add_start_token=False` and prepends `<|endoftext|>`, so its packer's `start_value` is set
   to `None`). Both get `stop_token_ids=None` / `stop_token_id=None`, so every call
   produces all 64 tokens. The prompts are word prefixes of corpus sentences with exactly 16
   tokens, so keras_hub's padding to one length and keras_seq's grouping by length do the
   same work. The generated texts are checked equal first. A run with the `torch` and
   `transformers` packages also times transformers' `GPT2LMHeadModel.generate` (greedy, CPU,
   ids in and out) as a peer; without them (this repository's environment) that part is
   skipped, with a line saying so. Token-id generation at a larger size is
   `bench_generation.py`.

Run: `python -m benchmarks.bench_text [harness options: --repeats --warmup --filter --quick
--no-record --results-file --target]`.
"""

import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import harness

TITLE = "Text: tokenizers vs HF tokenizers, checkpoint generation vs keras_hub"
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "models" / "checkpoint_fixtures"
GPT2_FIXTURE = FIXTURES / "hf_gpt2"
BERT_FIXTURE = FIXTURES / "hf_bert"
TOKENIZER_FILES = (
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
)
FULL_SIZES = {
    "corpus": 4000,
    "tfdata_batch": 256,
    "num_layers": 4,
    "hidden_dim": 256,
    "num_heads": 4,
    "intermediate_dim": 1024,
    "positions": 128,
    "prompt_length": 16,
    "new_tokens": 64,
    "batches": (1, 8),
}
QUICK_SIZES = {
    "corpus": 64,
    "tfdata_batch": 16,
    "num_layers": None,  # The fixture as it is (2 layers, hidden 32, 64 positions).
    "prompt_length": 8,
    "new_tokens": 4,
    "batches": (1, 2),
}
TOKENIZERS = {"GPT-2 BPE": GPT2_FIXTURE, "BERT WordPiece": BERT_FIXTURE}

_SUBJECTS = (
    "the old man",
    "a young woman",
    "my neighbour",
    "the committee",
    "our teacher",
    "the dog",
    "a small child",
    "the government",
    "Maria",
    "John",
    "the engineers",
    "her brother",
    "the city council",
    "a stranger",
    "the students",
    "everyone",
)
_VERBS = (
    "found",
    "bought",
    "painted",
    "described",
    "carried",
    "forgot",
    "discussed",
    "repaired",
    "noticed",
    "borrowed",
    "opened",
    "ignored",
    "explained",
    "sold",
    "built",
    "visited",
)
_ADJECTIVES = (
    "red",
    "heavy",
    "ancient",
    "beautiful",
    "broken",
    "quiet",
    "expensive",
    "strange",
    "wooden",
    "bright",
    "tiny",
    "enormous",
    "famous",
    "simple",
    "dangerous",
    "green",
)
_NOUNS = (
    "book",
    "house",
    "bridge",
    "letter",
    "car",
    "garden",
    "painting",
    "computer",
    "river",
    "report",
    "bicycle",
    "window",
    "market",
    "museum",
    "machine",
    "song",
)
_PLACES = (
    "near the station",
    "in the morning",
    "after the storm",
    "before dinner",
    "on Monday",
    "in London",
    "at the university",
    "during the summer",
    "by the lake",
    "last year",
)
_TEMPLATES = (
    "{S} {V} the {A} {N} {P}.",
    "{S} {V} a {A} {N}, and then {S2} {V2} it {P}.",
    "Why {S} {V} the {N} {P} is still a mystery.",
    "It's {K} o'clock, and {S} hasn't {V} the {A} {N} yet!",
    "In {Y}, {S} {V} {K} {A} {N}s {P}.",
    '"{S} {V} my {N}," said {S2}.',
    "{S} {V} the {N}; {S2} {V2} the {A2} {N2}.",
    "Did {S} really say that the {N} was {A}?",
)


def make_corpus(size, seed=0):
    """`size` English sentences from templates and word lists, the same for a given seed."""
    rng = np.random.default_rng(seed)

    def pick(words):
        return words[int(rng.integers(len(words)))]

    sentences = []
    for _ in range(size):
        words = {
            "S": pick(_SUBJECTS),
            "S2": pick(_SUBJECTS),
            "V": pick(_VERBS),
            "V2": pick(_VERBS),
            "A": pick(_ADJECTIVES),
            "A2": pick(_ADJECTIVES),
            "N": pick(_NOUNS),
            "N2": pick(_NOUNS),
            "P": pick(_PLACES),
            "K": str(int(rng.integers(2, 13))),
            "Y": str(int(rng.integers(1950, 2026))),
        }
        text = pick(_TEMPLATES).format(**words)
        sentences.append(text[0].upper() + text[1:])
    return sentences


def _ids_lists(ids):
    """Token ids (Python lists, NumPy, a tensor or ragged tensor) as a list of lists."""
    if hasattr(ids, "to_list"):
        ids = ids.to_list()
    elif not isinstance(ids, list):
        ids = np.asarray(ids).tolist()
    return [[int(token) for token in row] for row in ids]


def compare_ids(expected, actual):
    """`(mismatches, first)`: the number of rows that differ, and the first one as
    `(index, expected, actual)` or `None`."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} rows against {len(actual)}.")
    differ = [i for i, (a, b) in enumerate(zip(expected, actual)) if list(a) != list(b)]
    first = (differ[0], expected[differ[0]], actual[differ[0]]) if differ else None
    return len(differ), first


def _dataset(texts, tokenizer, batch):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(texts).batch(batch).map(tokenizer)


def _make_iterator(dataset):
    """A step that only creates an iterator over `dataset`."""

    def step():
        iter(dataset)
        return 0

    return step


def _one_pass(dataset):
    """A step that iterates `dataset` to its end with a new iterator, as an epoch does;
    returns the number of tokens."""

    def step():
        count = 0
        for ids in dataset:
            count += int(ids.flat_values.shape[0])
        return count

    return step


def _steady(dataset):
    """A step that pulls one pass's worth of batches from one iterator kept across calls
    (over `dataset.repeat()`), leaving out what creating an iterator costs; returns the
    number of tokens. Autotuning and prefetch injection are off, so the pipeline does not
    compute batches ahead between calls (with them, batches made while other variants run
    would be counted as free)."""
    import tensorflow as tf

    batches = int(dataset.cardinality())
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.inject_prefetch = False
    iterator = iter(dataset.repeat().with_options(options))

    def step():
        count = 0
        for _ in range(batches):
            count += int(next(iterator).flat_values.shape[0])
        return count

    return step


def _load_tokenizer(label, directory):
    if label.startswith("GPT-2"):
        from keras_seq.models import GPTCausalLM

        return GPTCausalLM.from_preset(str(directory)).tokenizer
    from keras_seq.models import BERTMaskedLM

    return BERTMaskedLM.from_preset(str(directory)).tokenizer


def tokenization_variants(sizes, settings, tokens_per_text):
    import tokenizers

    corpus = make_corpus(sizes["corpus"])
    one = corpus[:1]
    variants = []
    for label, directory in TOKENIZERS.items():
        ours = _load_tokenizer(label, directory)
        hf = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
        expected = [encoding.ids for encoding in hf.encode_batch(corpus)]
        checks = []
        for way, actual in (
            ("eager", _ids_lists(ours(corpus))),
            (
                "tf.data",
                [
                    row
                    for batch in _dataset(corpus, ours, sizes["tfdata_batch"])
                    for row in _ids_lists(batch)
                ],
            ),
        ):
            mismatches, first = compare_ids(expected, actual)
            checks.append(f"{way} {len(corpus) - mismatches}/{len(corpus)}")
            if first:
                index, theirs, mine = first
                print(
                    f"{label} {way}: {mismatches} texts differ from HF; first, "
                    f"{corpus[index]!r}: HF {theirs}, keras_seq {mine}",
                    file=sys.stderr,
                )
        tokens = sum(len(row) for row in expected)
        tokens_per_text[label] = tokens / len(corpus)
        settings[f"{label} ids equal HF's"] = ", ".join(checks)
        settings[f"{label} tokens"] = f"{tokens} ({tokens / len(corpus):.1f} per text)"
        peer = f"HF tokenizers {label} encode_batch"
        variants += [
            harness.Variant(
                peer,
                (lambda t: lambda: [e.ids for e in t.encode_batch(corpus)])(hf),
                items=len(corpus),
                item_unit="texts",
            ),
            harness.Variant(
                f"keras_seq {label} tokenizer eager list",
                (lambda t: lambda: t(corpus))(ours),
                peer=peer,
                items=len(corpus),
                item_unit="texts",
            ),
        ]
        batch = sizes["tfdata_batch"]
        dataset = _dataset(corpus, ours, batch)
        for way, fn in (
            (f"tf.data batch{batch} new pass", _one_pass(dataset)),
            (f"tf.data batch{batch} steady", _steady(dataset)),
        ):
            variants.append(
                harness.Variant(
                    f"keras_seq {label} tokenizer {way}",
                    fn,
                    peer=peer,
                    items=len(corpus),
                    item_unit="texts",
                )
            )
        variants.append(
            harness.Variant(
                f"keras_seq {label} tokenizer tf.data batch{batch} iter() alone",
                _make_iterator(dataset),
            )
        )
        one_peer = f"HF tokenizers {label} encode 1 text"
        variants += [
            harness.Variant(
                one_peer,
                (lambda t: lambda: t.encode(one[0]).ids)(hf),
                items=1,
                item_unit="texts",
            ),
            harness.Variant(
                f"keras_seq {label} tokenizer eager 1 text",
                (lambda t: lambda: t(one))(ours),
                peer=one_peer,
                items=1,
                item_unit="texts",
            ),
        ]
    return variants


# === Generation from a checkpoint ===


def write_gpt2_checkpoint(directory, sizes, seed=0):
    """A Hugging Face GPT-2 directory at `sizes` with the fixture's vocabulary and tokenizer
    files: `config.json`, `model.safetensors` (random float32 tensors, HF's names and
    layouts, initializer_range 0.02, layer norms near identity)."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = json.loads((GPT2_FIXTURE / "config.json").read_text())
    hidden, inner = sizes["hidden_dim"], sizes["intermediate_dim"]
    config.update(
        n_embd=hidden,
        n_head=sizes["num_heads"],
        n_layer=sizes["num_layers"],
        n_inner=inner,
        n_positions=sizes["positions"],
    )
    shapes = {
        "transformer.wte.weight": (config["vocab_size"], hidden),
        "transformer.wpe.weight": (sizes["positions"], hidden),
        "transformer.ln_f.weight": (hidden,),
        "transformer.ln_f.bias": (hidden,),
    }
    for i in range(sizes["num_layers"]):
        block = f"transformer.h.{i}."
        shapes.update(
            {
                block + "ln_1.weight": (hidden,),
                block + "ln_1.bias": (hidden,),
                block + "attn.c_attn.weight": (hidden, 3 * hidden),
                block + "attn.c_attn.bias": (3 * hidden,),
                block + "attn.c_proj.weight": (hidden, hidden),
                block + "attn.c_proj.bias": (hidden,),
                block + "ln_2.weight": (hidden,),
                block + "ln_2.bias": (hidden,),
                block + "mlp.c_fc.weight": (hidden, inner),
                block + "mlp.c_fc.bias": (inner,),
                block + "mlp.c_proj.weight": (inner, hidden),
                block + "mlp.c_proj.bias": (hidden,),
            }
        )
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in shapes.items():
        value = 0.02 * rng.standard_normal(shape, dtype=np.float32)
        if ".ln_" in name and name.endswith(".weight"):
            value += 1.0
        tensors[name] = value
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        shutil.copy(GPT2_FIXTURE / name, directory / name)
    return directory


def make_prompts(tokenizer, corpus, length, count):
    """`count` word prefixes of corpus sentences that tokenize to exactly `length` tokens."""
    prompts = []
    for sentence in corpus:
        words = sentence.split(" ")
        for end in range(1, len(words) + 1):
            prefix = " ".join(words[:end])
            size = len(_ids_lists(tokenizer([prefix]))[0])
            if size == length:
                prompts.append(prefix)
                break
            if size > length:
                break
        if len(prompts) == count:
            return prompts
    raise ValueError(f"Fewer than {count} prefixes of {length} tokens in the corpus.")


def torch_available():
    return all(importlib.util.find_spec(name) for name in ("torch", "transformers"))


def generation_variants(sizes, settings, keep):
    import keras_hub

    from keras_seq.models import GPTCausalLM

    if sizes["num_layers"] is None:
        directory = GPT2_FIXTURE
        settings["checkpoint"] = "the hf_gpt2 fixture (2 layers, hidden 32, vocabulary 400)"
    else:
        temporary = tempfile.TemporaryDirectory(prefix="bench_text_gpt2_")
        keep.append(temporary)  # Removed when the process ends.
        directory = write_gpt2_checkpoint(temporary.name, sizes)
        settings["checkpoint"] = (
            f"HF GPT-2 written with random weights: {sizes['num_layers']} layers, hidden "
            f"{sizes['hidden_dim']}, {sizes['num_heads']} heads, feed-forward "
            f"{sizes['intermediate_dim']}, {sizes['positions']} positions, the hf_gpt2 "
            "fixture's tokenizer (vocabulary 400)"
        )
    length, new_tokens = sizes["prompt_length"], sizes["new_tokens"]
    total = length + new_tokens
    ours = GPTCausalLM.from_preset(str(directory))
    peer = keras_hub.models.GPT2CausalLM.from_preset(str(directory))
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer=peer.preprocessor.tokenizer, sequence_length=total, add_start_token=False
    )
    # keras_hub 0.32's `generate_preprocess` packs with the start token whatever
    # `add_start_token` says; without a start value its packer adds none.
    preprocessor.build(None)
    preprocessor.packer.start_value = None
    peer.preprocessor = preprocessor
    peer.compile(sampler="greedy", jit_compile=True)
    corpus = make_corpus(max(64, 8 * max(sizes["batches"])), seed=1)
    prompts = make_prompts(ours.tokenizer, corpus, length, max(sizes["batches"]))
    transformers_model = None
    if torch_available():
        import torch
        import transformers

        transformers_model = transformers.GPT2LMHeadModel.from_pretrained(str(directory))
        transformers_model.eval()
    else:
        print("torch/transformers not installed: the transformers generate peer is skipped.")
        settings["transformers peer"] = "skipped (torch/transformers not installed)"
    variants = []
    for batch in sizes["batches"]:
        texts = prompts[:batch]
        expected = list(peer.generate(texts, stop_token_ids=None))
        actual = ours.generate(texts, new_tokens, stop_token_id=None)
        if [str(e) for e in expected] != list(actual):
            raise RuntimeError(
                f"batch {batch}: keras_seq's texts differ from keras_hub's: {actual[0]!r} "
                f"against {expected[0]!r}"
            )
        peer_name = f"keras_hub GPT2CausalLM text greedy b{batch} XLA"
        variants += [
            harness.Variant(
                peer_name,
                (lambda x: lambda: peer.generate(x, stop_token_ids=None))(texts),
                items=batch * new_tokens,
                item_unit="tok",
            ),
            harness.Variant(
                f"keras_seq GPTCausalLM.from_preset text greedy b{batch} XLA",
                (lambda x: lambda: ours.generate(x, new_tokens, stop_token_id=None))(texts),
                peer=peer_name,
                items=batch * new_tokens,
                item_unit="tok",
            ),
        ]
        if transformers_model is not None:
            ids = torch.tensor(_ids_lists(ours.tokenizer(texts)))

            def hf_generate(x=ids):
                with torch.no_grad():
                    return transformers_model.generate(
                        x,
                        attention_mask=torch.ones_like(x),
                        max_new_tokens=new_tokens,
                        min_new_tokens=new_tokens,
                        do_sample=False,
                        pad_token_id=0,
                    ).numpy()

            hf_name = f"transformers GPT2LMHeadModel ids greedy b{batch} CPU"
            variants += [
                harness.Variant(hf_name, hf_generate, items=batch * new_tokens, item_unit="tok"),
                harness.Variant(
                    f"keras_seq GPTCausalLM.from_preset text greedy b{batch} XLA (peer: HF)",
                    (lambda x: lambda: ours.generate(x, new_tokens, stop_token_id=None))(texts),
                    peer=hf_name,
                    items=batch * new_tokens,
                    item_unit="tok",
                ),
            ]
    settings.update(
        {
            "prompt_length": length,
            "new_tokens": new_tokens,
            "batches": sizes["batches"],
            "generation": "greedy, stop tokens off, texts checked equal to keras_hub's",
        }
    )
    return variants


TOKENS_PER_TEXT = {}
_KEEP = []


def build(quick):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    sizes = QUICK_SIZES if quick else FULL_SIZES
    settings = {"corpus": f"{sizes['corpus']} sentences (make_corpus, seed 0)"}
    variants = tokenization_variants(sizes, settings, TOKENS_PER_TEXT)
    variants += generation_variants(sizes, settings, _KEEP)
    settings["HF encode_batch"] = "Rayon threads on all cores"
    return variants, settings


def tokens_per_second(results, tokens_per_text=None):
    """Lines giving tokens/s for the tokenization variants (texts/s x tokens per text)."""
    tokens_per_text = TOKENS_PER_TEXT if tokens_per_text is None else tokens_per_text
    lines = []
    for result in results:
        label = next((k for k in tokens_per_text if k in result.name), None)
        if label is None or result.item_unit != "texts":
            continue
        rate = result.items / result.median * tokens_per_text[label]
        lines.append(f"- {result.name}: {rate:,.0f} tok/s")
    return "\n".join(lines) + "\n" if lines else ""


def main(argv=None):
    args = harness.parse_args(argv, default_repeats=15, default_warmup=1)
    results = harness.main(TITLE, build, argv=argv, default_repeats=15, default_warmup=1)
    lines = tokens_per_second(results)
    print("Tokens per second (tokenization):\n" + lines)
    if not args.no_record and lines:
        harness.append_section(
            "Tokens per second (tokenization, texts/s x tokens per text):\n\n" + lines,
            args.results_file,
        )
    return results


if __name__ == "__main__":
    main()
