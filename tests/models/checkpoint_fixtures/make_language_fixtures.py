"""Write small language-model checkpoints and tokenizers for keras_seq's tests.

The companion of ``make_checkpoint_fixtures.py`` (vision) for GPT-2, BERT and
Marian. Every fixture is a folder holding exactly what the reference libraries
write: the model's ``save_pretrained`` (``config.json``,
``model.safetensors``, ``generation_config.json`` for generative models) and
the tokenizer's ``save_pretrained``, plus ``reference.npz`` (fixed input
batches and the model's outputs, float32 / int64) and ``reference.json``
(strings: tokenizer ids for test texts, generated ids and decoded text).
keras_seq's tests have neither torch nor network access: they load these
folders with keras_seq's converters and tokenizers and compare.

Tokenizers are trained here on a small corpus written by this script (no
download): a byte-level BPE (``tokenizers``), WordPiece (``tokenizers``) and
two SentencePiece unigram models (``sentencepiece``).

Fixtures (folder names):

* ``hf_gpt2``: ``GPT2LMHeadModel`` + GPT-2 byte-level BPE tokenizer
  (``tokenizer.json`` written by transformers, ``vocab.json`` + ``merges.txt``
  written by ``tokenizers``' own ``BPE.save``; 399 trained entries, 256 bytes
  included, + ``<|endoftext|>`` at the last id as in GPT-2).
* ``hf_bert``: ``BertForMaskedLM`` (no pooler: ``add_pooling_layer=False``) +
  uncased WordPiece (``vocab.txt`` + ``tokenizer.json``).
* ``hf_bert_model``: ``BertModel`` with pooler, same tokenizer.
* ``hf_bert_pretraining``: ``BertForPreTraining`` (MLM + NSP heads, pooler).
* ``hf_bert_cased``: cased WordPiece (``do_lower_case=False``; accents kept)
  + ``BertModel``.
* ``hf_marian``: ``MarianMTModel`` with opus-mt conventions + ``MarianTokenizer``
  (``source.spm``, ``target.spm``, joint ``vocab.json``).

GPT-2 and Marian are first perturbed (as every fixture) and then trained for
a few hundred Adam steps on the toy corpus, so that greedy / beam decisions
have clear margins (``reference.json`` records the smallest top-1 margin of
each greedy run) and the generated text is readable. BERT models are only
perturbed. All parameters and floating-point persistent buffers (Marian's
``final_logits_bias``) are perturbed with a fixed generator, so no norm weight
is exactly 1 and no bias exactly 0; Marian's sinusoidal position tables are
left as they are (they are not saved: transformers recomputes them). Models
are float32, eval mode. Each ``make_*`` reloads what it wrote with
``from_pretrained`` (model and ``AutoTokenizer``) and asserts that the reloaded
pair reproduces every reference exactly; it also reloads the tokenizer from
its legacy files alone (``vocab.json`` + ``merges.txt``; ``vocab.txt`` through
transformers' pure-Python ``BertTokenizerLegacy``) and checks the ids.

By default the models are tiny (width 32, 2 layers, 2 heads, 64 positions;
about 1.4 MiB in all). ``full_size=True`` (``--full-size``) uses the real
architecture sizes (GPT-2 124M, BERT-base, Marian opus-mt base: d_model 512,
6+6 layers, 8 heads, ffn 2048, 512 positions) but keeps the tiny trained
tokenizers and their small vocabularies (the real vocabularies, 50257 / 30522
/ ~58k, cannot be trained here), and skips the short training.

Contents of ``reference.json`` (ids are Python ints, strings UTF-8):

* ``special_tokens`` (token and id of each), ``vocab_size``, ``tied`` (the
  groups of tied state-dict keys and which keys ``model.safetensors`` leaves
  out), ``training`` (steps, first / last loss) where trained.
* GPT-2: ``tokenize`` (text, ``input_ids`` of ``tokenizer(text)``, which adds
  no special tokens, byte-level ``tokens``, ``decoded``); ``generate``: greedy,
  8 new tokens, each prompt run alone without padding (``output_ids`` include
  the prompt; ``text`` = ``decode(output_ids, skip_special_tokens=True)``).
  ``reference.npz``: a right-padded batch (pad id = ``<|endoftext|>``,
  attention_mask 0) and its logits; only positions with mask 1 are meaningful.
* BERT: ``single`` / ``pair`` (input_ids, token_type_ids, attention_mask,
  tokens, decoded) of ``tokenizer(text)`` / ``tokenizer(a, b)``.
  ``reference.npz``: a padded batch of two sentence pairs and the outputs.
* Marian: ``source`` (``tokenizer(text)``: pieces + ``</s>``), ``target``
  (``tokenizer(text_target=...)``), ``generate`` (``greedy`` and ``beam3``
  with 10 new tokens, ``greedy_long`` with 24; batched with a padded encoder
  input; also each source run alone; ``output_ids`` start with the decoder
  start id and, batched, a finished row is padded with ``<pad>``), the saved
  ``generation_config``. ``reference.npz``: padded source batch, ``labels``
  (target ids padded with ``<pad>``), ``decoder_input_ids`` =
  ``shift_tokens_right(labels, pad, decoder_start)`` (no decoder attention
  mask: causal only), logits, encoder / decoder last hidden states, and the
  sinusoidal tables ``encoder_positions`` / ``decoder_positions``.

Marian (opus-mt) compared with a plain pre-2020 Transformer: token embeddings
times ``sqrt(d_model)`` (``scale_embedding``); sinusoidal positions from 0
(no offset) with the sines in the first ``d_model/2`` channels and the cosines
in the last ``d_model/2`` (not interleaved), channel pair ``i`` using
``pos / 10000**(2i/d_model)``, computed in float64 then cast; they are not
in the checkpoint; post-norm layers (``normalize_before`` false), no
embedding LayerNorm and no final encoder / decoder LayerNorm; LayerNorm eps
1e-5; ``swish`` (SiLU) activation; q/k/v/out projections with biases,
``q`` scaled by ``head_dim**-0.5``; encoder, decoder input embeddings and
``lm_head`` all tied to ``model.shared.weight``; logits =
``lm_head(h) + final_logits_bias`` (a persistent buffer, shape
(1, vocab)); decoding starts from ``<pad>`` (``decoder_start_token_id`` =
``pad_token_id`` = vocab_size - 1), ``</s>`` = 0 ends it;
``generation_config`` as opus-mt: ``bad_words_ids [[pad]]`` (the pad
logit is set to -inf at every step) and ``forced_eos_token_id 0`` (``</s>``
is forced when the length limit is reached: see ``greedy`` vs
``greedy_long``). The model's ids come from ``vocab.json``, not from the
SentencePiece ids (an unknown piece maps to ``<unk>`` = 1); ``source.spm``
uses the ``nmt_nfkc`` normalization of opus-mt, ``target.spm`` ``identity``
(to keep the files small).

Environment (kept apart from the project's own virtualenv; CPU only): the
one of ``make_checkpoint_fixtures.py`` plus::

    /work/refenv/bin/pip install tokenizers sentencepiece protobuf

Versions used: see ``manifest_language.json``. sacremoses is not needed:
transformers 5's ``MarianTokenizer`` does not apply its Moses punctuation
normalizer when tokenizing.

Run (no network needed; ``HF_HUB_OFFLINE=1`` is set by the script):

    /work/refenv/bin/python tests/models/checkpoint_fixtures/make_language_fixtures.py
    ... --only hf_gpt2 hf_marian          # a subset
    ... --out /tmp/full --full-size       # full-size variants elsewhere
"""

import argparse
import io
import json
import os
import random
import shutil
import tempfile
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
MANIFEST = "manifest_language.json"
TINY = dict(width=32, layers=2, heads=2, ffn=64, positions=64)

GPT2_VOCAB = 400  # 399 trained (256 bytes + merges) + <|endoftext|>
BERT_VOCAB = 300
SPM_VOCAB = 100  # per side (the toy corpus allows at most ~120 English pieces)
EOT = "<|endoftext|>"
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# --------------------------------------------------------------------------
# helpers (as in make_checkpoint_fixtures.py)


def _seed(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _fresh_dir(path):
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@torch.no_grad()
def _perturb(model, seed, skip=()):
    """Add small seeded noise to every parameter and float persistent buffer.

    Tensors whose name contains one of ``skip`` are left alone (Marian's
    sinusoidal tables: not saved, recomputed by transformers on load). Tied
    tensors are perturbed once.
    """
    gen = torch.Generator().manual_seed(seed)
    persistent = set(model.state_dict().keys())
    seen = set()
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, t in tensors:
        if name not in persistent or not t.is_floating_point():
            continue
        if any(s in name for s in skip) or t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        t.add_(0.02 * torch.randn(t.shape, generator=gen))
    model.eval()
    return model


def _np(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def _ids(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.int64))


def _save_npz(out_dir, arrays):
    np.savez_compressed(Path(out_dir) / "reference.npz", **arrays)


def _save_json(out_dir, data):
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    (Path(out_dir) / "reference.json").write_text(text, encoding="utf-8")


def _assert_same(expected, actual, what):
    for key, value in actual.items():
        ref = expected[key]
        if ref.shape != value.shape or not np.array_equal(ref, value):
            diff = np.max(np.abs(ref - value)) if ref.shape == value.shape else "shape"
            raise AssertionError(f"{what}: reloaded {key} differs from reference ({diff})")


def _assert_equal(expected, actual, what):
    if expected != actual:
        raise AssertionError(f"{what}: reloaded result differs:\n{expected}\n{actual}")


def _safetensors_keys(out_dir):
    from safetensors import safe_open

    with safe_open(str(Path(out_dir) / "model.safetensors"), "pt") as f:
        return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}


def _tied_info(model, out_dir):
    """Which state-dict keys are tied and which of them the safetensors file holds."""
    state = model.state_dict()
    saved = _safetensors_keys(out_dir)
    by_ptr = {}
    for k, v in state.items():
        by_ptr.setdefault(v.data_ptr(), []).append(k)
    tied = [sorted(ks) for ks in by_ptr.values() if len(ks) > 1]
    return {
        "tied_groups": tied,
        "state_dict_keys_not_in_safetensors": sorted(set(state) - set(saved)),
        "safetensors_keys_not_in_state_dict": sorted(set(saved) - set(state)),
    }


def _train(model, batches, steps, lr, seed):
    """A short seeded AdamW run so generation has clear top-1 margins."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        batch = batches[int(torch.randint(len(batches), (1,), generator=gen))]
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach().item())
    model.eval()
    return {"steps": steps, "lr": lr, "first_loss": losses[0], "last_loss": losses[-1]}


def _min_margin(scores):
    """Smallest (top1 - top2) over generation steps and batch rows of processed scores."""
    margins = []
    for s in scores:
        top = torch.topk(s.float(), 2, dim=-1).values
        margins.append(float((top[:, 0] - top[:, 1]).min()))
    return min(margins)


# --------------------------------------------------------------------------
# toy corpora


_NAMES = ["Anna", "Ben", "Chloé", "David", "Emma", "José", "Lena", "Noah", "Zoë", "Mr. Müller"]
_PLACES = [
    "Paris",
    "Berlin",
    "Zürich",
    "London",
    "New York",
    "São Paulo",
    "the park",
    "the café",
    "the library",
    "the old town",
]
_THINGS = [
    "a book",
    "two apples",
    "the red car",
    "an old map",
    "3 tickets",
    "a cup of tea",
    "the blue bike",
    "some bread",
    "a naïve question",
    "her résumé",
    "12 eggs",
    "a big dog",
]
_VERBS = ["likes", "buys", "finds", "reads", "sells", "wants", "sees", "brings"]
_TIMES = [
    "at 7:30",
    "on Monday",
    "in 2024",
    "every day",
    "tomorrow",
    "at 12:15",
    "last week",
    "before 9 a.m.",
]
_ADJS = ["happy", "tired", "small", "clever", "lazy", "quiet", "brave", "hungry"]
_ANIMALS = ["cat", "dog", "fox", "bird", "horse", "mouse"]
_FIXED = [
    "The cat sat on the mat.",
    "Where did the cat sit?",
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! The café in Zürich opens at 7:30.",
    "The café in Zürich serves crème brûlée.",
    "A naïve façade hides nothing.",
    "Déjà vu: the same thing, twice.",
    "Prices rose by 3.5% in 2023.",
    "Email me at anna@example.com, please.",
    "It's 10 o'clock; we're late!",
    "WHY ARE YOU SHOUTING?",
    "Numbers like 1, 22, 333 and 4444 are easy.",
    'She said: "Don\'t worry."',
    "(This sentence is in parentheses.)",
    "Is it 5 p.m. in Tokyo yet?",
    "The dog and the cat are friends.",
]


def _english_corpus(n=300):
    rng = random.Random(_seed("english_corpus"))
    templates = [
        "{name} {verb} {thing} in {place} {time}.",
        "Does {name} really want {thing}?",
        "{NAME} {VERB} {THING}!",
        '"{Thing}," said {name}, "costs ${price}."',
        "It's {num} degrees in {place}; isn't that nice?",
        "{name} and {name2} met {time} (in {place}).",
        "The {adj} {animal} can't find {thing} - what a day!",
        "The {adj} {animal} sat on the mat.",
        "In {place}, {name} {verb} {thing}.",
        "Why is the {animal} so {adj}?",
    ]
    out = list(_FIXED)
    while len(out) < n:
        thing = rng.choice(_THINGS)
        fields = dict(
            name=rng.choice(_NAMES),
            name2=rng.choice(_NAMES),
            verb=rng.choice(_VERBS),
            thing=thing,
            Thing=thing[0].upper() + thing[1:],
            place=rng.choice(_PLACES),
            time=rng.choice(_TIMES),
            price=f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d}",
            num=rng.randint(-10, 40),
            adj=rng.choice(_ADJS),
            animal=rng.choice(_ANIMALS),
        )
        fields.update(NAME=fields["name"].upper(), VERB=fields["verb"].upper())
        fields["THING"] = thing.upper()
        out.append(rng.choice(templates).format(**fields))
    return out


# (english, german, gender, english plural, german plural) nouns; adjectives; places.
_NOUNS_EN_DE = [
    ("cat", "Katze", "f", "cats", "Katzen"),
    ("dog", "Hund", "m", "dogs", "Hunde"),
    ("house", "Haus", "n", "houses", "Häuser"),
    ("car", "Auto", "n", "cars", "Autos"),
    ("book", "Buch", "n", "books", "Bücher"),
    ("table", "Tisch", "m", "tables", "Tische"),
    ("woman", "Frau", "f", "women", "Frauen"),
    ("man", "Mann", "m", "men", "Männer"),
    ("child", "Kind", "n", "children", "Kinder"),
    ("bird", "Vogel", "m", "birds", "Vögel"),
    ("apple", "Apfel", "m", "apples", "Äpfel"),
    ("door", "Tür", "f", "doors", "Türen"),
    ("chair", "Stuhl", "m", "chairs", "Stühle"),
    ("flower", "Blume", "f", "flowers", "Blumen"),
    ("window", "Fenster", "n", "windows", "Fenster"),
    ("tree", "Baum", "m", "trees", "Bäume"),
]
_ARTICLE = {"m": "Der", "f": "Die", "n": "Das"}
_INDEFINITE_ACC = {"m": ("einen", "en"), "f": ("eine", "e"), "n": ("ein", "es")}
_ADJS_EN_DE = [
    ("big", "groß"),
    ("small", "klein"),
    ("red", "rot"),
    ("old", "alt"),
    ("new", "neu"),
    ("green", "grün"),
    ("beautiful", "schön"),
    ("white", "weiß"),
]
_PLACES_EN_DE = [
    ("in the garden", "im Garten"),
    ("in the city", "in der Stadt"),
    ("in Zürich", "in Zürich"),
    ("on the street", "auf der Straße"),
    ("at home", "zu Hause"),
    ("in the kitchen", "in der Küche"),
]
_NUMBERS_EN_DE = [
    ("two", "zwei"),
    ("three", "drei"),
    ("four", "vier"),
    ("five", "fünf"),
    ("5", "5"),
    ("12", "12"),
    ("2024", "2024"),
]
_DAYS_EN_DE = [
    ("Monday", "Montag"),
    ("Tuesday", "Dienstag"),
    ("Wednesday", "Mittwoch"),
    ("Thursday", "Donnerstag"),
    ("Friday", "Freitag"),
    ("Saturday", "Samstag"),
    ("Sunday", "Sonntag"),
]
_CITIES_EN_DE = [
    ("Munich", "München"),
    ("Vienna", "Wien"),
    ("Cologne", "Köln"),
    ("Zurich", "Zürich"),
    ("Berlin", "Berlin"),
    ("Geneva", "Genf"),
]


def _parallel_corpus():
    """Templated English -> German pairs (deterministic order, every combination once)."""
    pairs = []
    for en, de, g, _, _ in _NOUNS_EN_DE:
        art = _ARTICLE[g]
        ind, ending = _INDEFINITE_ACC[g]
        for k, (adj_en, adj_de) in enumerate(_ADJS_EN_DE):
            place_en, place_de = _PLACES_EN_DE[(k + len(de)) % len(_PLACES_EN_DE)]
            pairs.append(
                (f"The {adj_en} {en} is {place_en}.", f"{art} {adj_de}e {de} ist {place_de}.")
            )
            pairs.append((f"The {en} is not {adj_en}!", f"{art} {de} ist nicht {adj_de}!"))
            pairs.append((f"I have a {adj_en} {en}.", f"Ich habe {ind} {adj_de}{ending} {de}."))
        pairs.append((f"Where is the {en}?", f"Wo ist {art.lower()} {de}?"))
    for _, _, _, pl_en, pl_de in _NOUNS_EN_DE:
        for num_en, num_de in _NUMBERS_EN_DE:
            pairs.append((f"I see {num_en} {pl_en}.", f"Ich sehe {num_de} {pl_de}."))
    for day_en, day_de in _DAYS_EN_DE:
        for city_en, city_de in _CITIES_EN_DE:
            pairs.append(
                (
                    f"We are going to {city_en} on {day_en}.",
                    f"Wir fahren am {day_de} nach {city_de}.",
                )
            )
    for hour in range(1, 13):
        pairs.append((f"It is {hour} o'clock.", f"Es ist {hour} Uhr."))
    return pairs


# --------------------------------------------------------------------------
# tokenizers


def _merges_of(tokenizer):
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


def _gpt2_tokenizer(model_max_length):
    """Byte-level BPE trained by `tokenizers`, wrapped as transformers' GPT2TokenizerFast."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        _english_corpus(),
        vocab_size=GPT2_VOCAB - 1,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
    )
    vocab = bpe.get_vocab()
    if len(vocab) != GPT2_VOCAB - 1:
        raise AssertionError(f"BPE trained {len(vocab)} entries, expected {GPT2_VOCAB - 1}")
    vocab[EOT] = len(vocab)  # GPT-2: <|endoftext|> is the last id, inside vocab.json
    return GPT2TokenizerFast(
        vocab=vocab, merges=_merges_of(bpe._tokenizer), model_max_length=model_max_length
    )


def _bert_tokenizer(lowercase, model_max_length):
    """WordPiece trained by `tokenizers`' BertWordPieceTokenizer, as BertTokenizerFast."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    corpus = _english_corpus()
    wp = BertWordPieceTokenizer(
        lowercase=lowercase, strip_accents=None, clean_text=True, handle_chinese_chars=True
    )
    # tokenizers' trainer registers the "##c" continuation symbols in the order it meets
    # words in a (randomly seeded) hash map, and breaks ties between equally frequent
    # merges by symbol id, so its vocabulary changes from one process to the next. It
    # registers the special tokens first, in the order given: listing every "##c" there,
    # sorted, makes training deterministic (the vocabulary's set of "##c" is the same).
    normalizer = wp._tokenizer.normalizer
    pre_tokenizer = wp._tokenizer.pre_tokenizer
    continuation = set()
    for text in corpus:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            continuation.update("##" + c for c in word[1:])
    wp.train_from_iterator(
        corpus,
        vocab_size=BERT_VOCAB,
        min_frequency=2,
        show_progress=False,
        special_tokens=BERT_SPECIALS + sorted(continuation),
        wordpieces_prefix="##",
    )
    vocab = wp.get_vocab()
    return BertTokenizerFast(
        vocab=vocab, do_lower_case=lowercase, model_max_length=model_max_length
    )


def _train_spm(sentences, vocab_size, normalization):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
        normalization_rule_name=normalization,
    )
    return model.getvalue()


def _marian_vocab(spm_files):
    """Joint opus-mt style vocab: </s>=0, <unk>=1, pieces of both sides, <pad> last."""
    import sentencepiece as spm

    vocab = {"</s>": 0, "<unk>": 1}
    for path in spm_files:
        sp = spm.SentencePieceProcessor(model_file=str(path))
        for i in range(sp.get_piece_size()):
            if sp.is_control(i) or sp.is_unknown(i):
                continue
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    return vocab


def _marian_tokenizer(work_dir, model_max_length):
    from transformers import MarianTokenizer

    pairs = _parallel_corpus()
    work = Path(work_dir)
    src, tgt = work / "source.spm", work / "target.spm"
    # source: nmt_nfkc as opus-mt (its precompiled charsmap is ~237 KB of the file);
    # target: identity, to keep the fixtures small (and so that a loader must read
    # each model's normalizer spec instead of assuming one).
    src.write_bytes(_train_spm([p[0] for p in pairs], SPM_VOCAB, "nmt_nfkc"))
    tgt.write_bytes(_train_spm([p[1] for p in pairs], SPM_VOCAB, "identity"))
    vocab_file = work / "vocab.json"
    vocab_file.write_text(json.dumps(_marian_vocab([src, tgt]), indent=2, ensure_ascii=False))
    return MarianTokenizer(
        source_spm=str(src),
        target_spm=str(tgt),
        vocab=str(vocab_file),
        source_lang="en",
        target_lang="de",
        model_max_length=model_max_length,
    )


def _special_tokens(tok):
    out = {}
    for attr in ("bos", "eos", "unk", "pad", "cls", "sep", "mask"):
        token = getattr(tok, f"{attr}_token", None)
        if token is not None:
            out[f"{attr}_token"] = str(token)
            out[f"{attr}_token_id"] = tok.convert_tokens_to_ids(str(token))
    return out


# --------------------------------------------------------------------------
# GPT-2


GPT2_TEXTS = [
    "Hello world! The café in Zürich opens at 7:30.",
    " A leading space, and  two  double  spaces.",
    "Numbers: 12345 and 3.14; naïve résumé?",
    "UPPER lower MiXeD-case (parens) \"quotes\" it's we'll",
    "Unseen: 東京 ☃ 🙂\nnew line\ttab  ",
    "Hi<|endoftext|>there",
    "",
]
GPT2_BATCH = ["The cat sat on the mat.", "Anna buys a book in Paris at 7:30."]
GPT2_PROMPTS = ["The cat", "Does Emma really want a cup of"]


def _gpt2_config(vocab_size, eot_id, full_size):
    from transformers import GPT2Config

    common = dict(vocab_size=vocab_size, bos_token_id=eot_id, eos_token_id=eot_id)
    if full_size:
        return GPT2Config(**common)  # 124M: 768 wide, 12 layers, 12 heads, 1024 positions
    return GPT2Config(
        n_embd=TINY["width"],
        n_layer=TINY["layers"],
        n_head=TINY["heads"],
        n_positions=TINY["positions"],
        **common,
    )


def _gpt2_training_batches(tok, block=32, batch=16):
    stream = []
    for text in _english_corpus():
        stream += tok(text)["input_ids"] + [tok.eos_token_id]
    blocks = [stream[i : i + block] for i in range(0, len(stream) - block, block // 2)]
    batches = []
    for i in range(0, len(blocks) - batch + 1, batch):
        ids = torch.tensor(blocks[i : i + batch])
        batches.append({"input_ids": ids, "labels": ids})
    return batches


def _gpt2_reference(model, tok):
    eot = tok.eos_token_id
    tokenize = []
    for text in GPT2_TEXTS:
        ids = tok(text)["input_ids"]
        tokenize.append(
            {
                "text": text,
                "input_ids": ids,
                "tokens": tok.convert_ids_to_tokens(ids),
                "decoded": tok.decode(ids),
            }
        )
    # right-padded batch (GPT-2 has no pad token: pad with <|endoftext|>, mask 0)
    rows = [tok(t)["input_ids"] for t in GPT2_BATCH]
    length = max(len(r) for r in rows)
    input_ids = np.full((len(rows), length), eot, np.int64)
    mask = np.zeros((len(rows), length), np.int64)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask))
    arrays = {"input_ids": input_ids, "attention_mask": mask, "logits": _np(out.logits)}
    generate = []
    for prompt in GPT2_PROMPTS:
        ids = torch.tensor([tok(prompt)["input_ids"]])
        with torch.no_grad():
            gen = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=1,
                max_new_tokens=8,
                pad_token_id=eot,
                output_scores=True,
                return_dict_in_generate=True,
            )
        seq = gen.sequences[0].tolist()
        generate.append(
            {
                "prompt": prompt,
                "prompt_ids": ids[0].tolist(),
                "output_ids": seq,
                "new_ids": seq[ids.shape[1] :],
                "text": tok.decode(seq, skip_special_tokens=True),
                "new_text": tok.decode(seq[ids.shape[1] :], skip_special_tokens=True),
                "min_top1_margin": _min_margin(gen.scores),
            }
        )
    data = {
        "tokenize": tokenize,
        "batch_texts": GPT2_BATCH,
        "generate_settings": {
            "do_sample": False,
            "num_beams": 1,
            "max_new_tokens": 8,
            "pad_token_id": eot,
            "prompts_run_separately_without_padding": True,
        },
        "generate": generate,
    }
    return arrays, data


def make_hf_gpt2(out_dir, full_size=False):
    """GPT2LMHeadModel + byte-level BPE: ids, padded-batch logits, greedy generation."""
    from transformers import AutoTokenizer
    from transformers import GPT2LMHeadModel
    from transformers import GPT2Tokenizer

    name = "hf_gpt2"
    out = _fresh_dir(out_dir)
    torch.manual_seed(_seed(name))
    config = _gpt2_config(GPT2_VOCAB, GPT2_VOCAB - 1, full_size)
    tok = _gpt2_tokenizer(config.n_positions)
    if tok.eos_token_id != GPT2_VOCAB - 1 or len(tok) != GPT2_VOCAB:
        raise AssertionError(f"{name}: unexpected tokenizer {tok}")
    model = _perturb(GPT2LMHeadModel(config), _seed(name))
    training = None
    if not full_size:
        training = _train(model, _gpt2_training_batches(tok), 400, 3e-3, _seed(name))

    arrays, data = _gpt2_reference(model, tok)
    data["special_tokens"] = _special_tokens(tok)
    data["vocab_size"] = len(tok)
    data["training"] = training
    model.save_pretrained(out)
    tok.save_pretrained(out)
    tok.backend_tokenizer.model.save(str(out))  # vocab.json + merges.txt, by `tokenizers`
    _save_npz(out, arrays)
    data["tied"] = _tied_info(model, out)
    _save_json(out, data)

    reloaded = GPT2LMHeadModel.from_pretrained(out).eval()
    rtok = AutoTokenizer.from_pretrained(out)
    r_arrays, r_data = _gpt2_reference(reloaded, rtok)
    _assert_same(arrays, r_arrays, name)
    _assert_equal(data["tokenize"], r_data["tokenize"], name)
    _assert_equal(data["generate"], r_data["generate"], name)
    with tempfile.TemporaryDirectory() as tmp:  # the legacy files alone
        for f in ("vocab.json", "merges.txt"):
            shutil.copy(out / f, Path(tmp) / f)
        legacy = GPT2Tokenizer.from_pretrained(tmp)
        _assert_equal(
            [t["input_ids"] for t in data["tokenize"]],
            [legacy(t)["input_ids"] for t in GPT2_TEXTS],
            name + " (vocab.json + merges.txt)",
        )
    return {
        "model_class": "transformers.GPT2LMHeadModel",
        "tokenizer_class": type(rtok).__name__,
        "description": "GPT-2 (tiny: n_embd 32, 2 layers, 2 heads, 64 positions, vocab 400) "
        "perturbed + briefly trained; byte-level BPE trained locally, <|endoftext|> = 399 "
        "(bos = eos = unk, no pad). npz: right-padded batch (pad = 399, mask 0) logits.",
    }


# --------------------------------------------------------------------------
# BERT


BERT_TEXTS = [
    "Hello world! The café in Zürich opens at 7:30.",
    "Numbers: 12345 and 3.14; naïve résumé?",
    'UPPER lower MiXeD-case (parens) "quotes" it\'s',
    "Unseen: 東京 ☃ and supercalifragilistic words",
    "  leading and trailing spaces\t\n",
    "The [MASK] sat on the mat.",
    "Crème brûlée in São Paulo, DÉJÀ VU!",
]
BERT_PAIR = ("The cat sat on the mat.", "Where did the cat sit?")
BERT_BATCH = [
    ("The [MASK] sat on the mat.", "Where did the cat sit?"),
    ("Hello world!", "Zoë is happy."),
]


def _bert_config(vocab_size, full_size):
    from transformers import BertConfig

    if full_size:
        return BertConfig(vocab_size=vocab_size)  # bert-base
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=TINY["width"],
        num_hidden_layers=TINY["layers"],
        num_attention_heads=TINY["heads"],
        intermediate_size=TINY["ffn"],
        max_position_embeddings=TINY["positions"],
        type_vocab_size=2,
    )


def _bert_tokenize_reference(tok):
    def entry(enc, **texts):
        return dict(
            texts,
            input_ids=enc["input_ids"],
            token_type_ids=enc["token_type_ids"],
            attention_mask=enc["attention_mask"],
            tokens=tok.convert_ids_to_tokens(enc["input_ids"]),
            decoded=tok.decode(enc["input_ids"], skip_special_tokens=True),
        )

    single = [entry(tok(t), text=t) for t in BERT_TEXTS]
    pair = entry(tok(*BERT_PAIR), text=BERT_PAIR[0], text_pair=BERT_PAIR[1])
    return {"single": single, "pair": pair}


def _bert_batch(tok):
    enc = tok(
        [a for a, _ in BERT_BATCH],
        [b for _, b in BERT_BATCH],
        padding=True,
        return_tensors="pt",
    )
    return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")}


def _bert_outputs(model, tok, kind):
    batch = _bert_batch(tok)
    arrays = {k: _ids(v) for k, v in batch.items()}
    with torch.no_grad():
        if kind == "mlm":
            arrays["logits"] = _np(model(**batch).logits)
            base = model.bert(**batch)
        elif kind == "pretraining":
            out = model(**batch)
            arrays["prediction_logits"] = _np(out.prediction_logits)
            arrays["seq_relationship_logits"] = _np(out.seq_relationship_logits)
            base = model.bert(**batch)
        else:
            base = model(**batch)
    arrays["last_hidden_state"] = _np(base.last_hidden_state)
    if base.pooler_output is not None:
        arrays["pooler_output"] = _np(base.pooler_output)
    return arrays


def _make_bert(name, out_dir, full_size, model_cls, kind, lowercase=True):
    from transformers import AutoTokenizer
    from transformers import BertTokenizerLegacy

    out = _fresh_dir(out_dir)
    torch.manual_seed(_seed(name))
    config = _bert_config(BERT_VOCAB, full_size)
    tok = _bert_tokenizer(lowercase, config.max_position_embeddings)
    if len(tok) != BERT_VOCAB:
        raise AssertionError(f"{name}: WordPiece trained {len(tok)} entries")
    model = _perturb(model_cls(config), _seed(name))
    arrays = _bert_outputs(model, tok, kind)
    data = {
        "do_lower_case": lowercase,
        "special_tokens": _special_tokens(tok),
        "vocab_size": len(tok),
        "batch_pairs": [list(p) for p in BERT_BATCH],
        "has_pooler": "pooler_output" in arrays,
    }
    data.update(_bert_tokenize_reference(tok))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    tok.backend_tokenizer.model.save(str(out))  # vocab.txt, by `tokenizers`
    _save_npz(out, arrays)
    data["tied"] = _tied_info(model, out)
    _save_json(out, data)

    reloaded = model_cls.from_pretrained(out).eval()
    rtok = AutoTokenizer.from_pretrained(out)
    _assert_same(arrays, _bert_outputs(reloaded, rtok, kind), name)
    _assert_equal(_bert_tokenize_reference(tok), _bert_tokenize_reference(rtok), name)
    # vocab.txt alone through transformers' pure-Python BERT tokenizer
    legacy = BertTokenizerLegacy(str(out / "vocab.txt"), do_lower_case=lowercase)
    _assert_equal(
        [t["input_ids"] for t in data["single"]] + [data["pair"]["input_ids"]],
        [legacy(t)["input_ids"] for t in BERT_TEXTS] + [legacy(*BERT_PAIR)["input_ids"]],
        name + " (vocab.txt, BertTokenizerLegacy)",
    )
    return data, type(rtok).__name__


def make_hf_bert(out_dir, full_size=False):
    """BertForMaskedLM (no pooler) + uncased WordPiece: MLM logits, model.bert outputs."""
    from transformers import BertForMaskedLM

    data, tok_cls = _make_bert("hf_bert", out_dir, full_size, BertForMaskedLM, "mlm")
    if data["has_pooler"]:
        raise AssertionError("hf_bert: BertForMaskedLM unexpectedly has a pooler")
    return {
        "model_class": "transformers.BertForMaskedLM",
        "tokenizer_class": tok_cls,
        "description": "BERT MLM (tiny: hidden 32, 2 layers, 2 heads, ffn 64, 64 positions, "
        "vocab 300); BertForMaskedLM builds BertModel(add_pooling_layer=False): no "
        "bert.pooler.* keys, so no pooler_output. npz: padded batch of 2 sentence pairs; "
        "logits + last_hidden_state of model.bert.",
    }


def make_hf_bert_model(out_dir, full_size=False):
    """BertModel with pooler + uncased WordPiece: last_hidden_state, pooler_output."""
    from transformers import BertModel

    _, tok_cls = _make_bert("hf_bert_model", out_dir, full_size, BertModel, "base")
    return {
        "model_class": "transformers.BertModel",
        "tokenizer_class": tok_cls,
        "description": "BertModel with pooler (keys without 'bert.' prefix), same sizes and "
        "tokenizer as hf_bert.",
    }


def make_hf_bert_pretraining(out_dir, full_size=False):
    """BertForPreTraining (MLM + NSP): prediction_logits, seq_relationship_logits."""
    from transformers import BertForPreTraining

    _, tok_cls = _make_bert(
        "hf_bert_pretraining", out_dir, full_size, BertForPreTraining, "pretraining"
    )
    return {
        "model_class": "transformers.BertForPreTraining",
        "tokenizer_class": tok_cls,
        "description": "BERT with MLM + NSP heads (the layout of google's bert-base "
        "checkpoints): prediction_logits, seq_relationship_logits, and model.bert's "
        "last_hidden_state + pooler_output.",
    }


def make_hf_bert_cased(out_dir, full_size=False):
    """Cased WordPiece (do_lower_case False, accents kept) + BertModel."""
    from transformers import BertModel

    data, tok_cls = _make_bert(
        "hf_bert_cased", out_dir, full_size, BertModel, "base", lowercase=False
    )
    return {
        "model_class": "transformers.BertModel",
        "tokenizer_class": tok_cls,
        "description": "cased WordPiece trained locally (do_lower_case false, strip_accents "
        "None -> accents kept because lowercase is off) + tiny BertModel with pooler.",
    }


# --------------------------------------------------------------------------
# Marian


MARIAN_SOURCES = [
    "The small cat is in the garden.",
    "I see three books.",
    "Where is the bird?",
    "The green car is on the street.",
]
MARIAN_TARGETS = [
    "Die kleine Katze ist im Garten.",
    "Ich sehe drei Bücher.",
    "Wo ist der Vogel?",
    "Das grüne Auto ist auf der Straße.",
]
MARIAN_EXTRA_SOURCES = [
    "Unseen: Zoë's café, 2024!",
    "The ﬁve  big   trees are in Ｚürich.",  # nmt_nfkc: ligature, full-width, spaces
    "",
]


def _marian_config(vocab_size, full_size):
    from transformers import MarianConfig

    pad = vocab_size - 1
    common = dict(
        vocab_size=vocab_size,
        decoder_vocab_size=vocab_size,
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=0,
        bos_token_id=0,
        forced_eos_token_id=0,
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        dropout=0.1,
        attention_dropout=0.0,
        activation_dropout=0.0,
        # fields that Helsinki-NLP/opus-mt-* config.json files carry (unused by transformers 5)
        normalize_before=False,
        normalize_embedding=False,
        static_position_embeddings=True,
        add_bias_logits=False,
        add_final_layer_norm=False,
    )
    if full_size:  # opus-mt base
        sizes = dict(width=512, layers=6, heads=8, ffn=2048, positions=512)
    else:
        sizes = TINY
    return MarianConfig(
        d_model=sizes["width"],
        encoder_layers=sizes["layers"],
        decoder_layers=sizes["layers"],
        encoder_attention_heads=sizes["heads"],
        decoder_attention_heads=sizes["heads"],
        encoder_ffn_dim=sizes["ffn"],
        decoder_ffn_dim=sizes["ffn"],
        max_position_embeddings=sizes["positions"],
        **common,
    )


def _marian_generation_config(model):
    """opus-mt's generation_config.json fields."""
    pad = model.config.pad_token_id
    g = model.generation_config
    g.bad_words_ids = [[pad]]
    g.bos_token_id = 0
    g.decoder_start_token_id = pad
    g.eos_token_id = 0
    g.forced_eos_token_id = 0
    g.pad_token_id = pad
    g.max_length = model.config.max_position_embeddings
    g.num_beams = 4


def _marian_training_batches(tok, batch=16):
    pairs = _parallel_corpus()
    random.Random(_seed("marian_batches")).shuffle(pairs)
    batches = []
    for i in range(0, len(pairs) - batch + 1, batch):
        chunk = pairs[i : i + batch]
        enc = tok(
            [p[0] for p in chunk],
            text_target=[p[1] for p in chunk],
            padding=True,
            return_tensors="pt",
        )
        labels = enc["labels"].masked_fill(enc["labels"] == tok.pad_token_id, -100)
        batches.append(
            {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "labels": labels,
            }
        )
    return batches


def _strip_pad(seq, pad):
    """Drop the trailing pads that batched generation appends after </s>."""
    end = len(seq)
    while end > 1 and seq[end - 1] == pad:
        end -= 1
    return seq[:end]


def _marian_reference(model, tok):
    from transformers.models.marian.modeling_marian import shift_tokens_right

    pad = model.config.pad_token_id
    src_texts = MARIAN_SOURCES + MARIAN_EXTRA_SOURCES
    source = [
        {"text": t, "input_ids": tok(t)["input_ids"], "tokens": tok.tokenize(t)} for t in src_texts
    ]
    target = []
    for t in MARIAN_TARGETS:
        ids = tok(text_target=t)["input_ids"]
        target.append(
            {
                "text": t,
                "input_ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=True),
            }
        )
    # teacher forcing on a padded batch (decoder_input_ids = labels shifted right, start = pad;
    # no decoder_attention_mask: causal only, as in transformers' training forward)
    enc = tok(MARIAN_SOURCES[:2], text_target=MARIAN_TARGETS[:2], padding=True, return_tensors="pt")
    labels = enc["labels"]
    dec_in = shift_tokens_right(labels, pad, model.config.decoder_start_token_id)
    with torch.no_grad():
        out = model(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            decoder_input_ids=dec_in,
        )
    arrays = {
        "input_ids": _ids(enc["input_ids"]),
        "attention_mask": _ids(enc["attention_mask"]),
        "labels": _ids(labels),
        "decoder_input_ids": _ids(dec_in),
        "logits": _np(out.logits),
        "encoder_last_hidden_state": _np(out.encoder_last_hidden_state),
        "decoder_last_hidden_state": _np(
            model.model(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                decoder_input_ids=dec_in,
            ).last_hidden_state
        ),
        "encoder_positions": _np(model.model.encoder.embed_positions.weight),
        "decoder_positions": _np(model.model.decoder.embed_positions.weight),
    }
    gen_src = MARIAN_SOURCES[:2]
    generate = {}
    # "default": the saved generation_config alone (beam search, num_beams 4, length
    # penalty 1.0, early_stopping False, max_length 64); "beam4_never": the exact stopping
    # rule (early_stopping="never"). Both run to the config's max_length if need be.
    runs = (
        ("greedy", dict(do_sample=False, num_beams=1, max_new_tokens=10)),
        ("beam3", dict(do_sample=False, num_beams=3, max_new_tokens=10)),
        ("greedy_long", dict(do_sample=False, num_beams=1, max_new_tokens=24)),
        ("default", {}),
        ("beam4_never", dict(num_beams=4, early_stopping="never", max_new_tokens=40)),
    )
    for label, options in runs:
        beams = options.get("num_beams", model.generation_config.num_beams)
        batch = tok(gen_src, padding=True, return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(
                **batch,
                **options,
                output_scores=True,
                return_dict_in_generate=True,
            )
        seqs = gen.sequences.tolist()
        separate = []
        for text in gen_src:
            one = tok([text], return_tensors="pt")
            with torch.no_grad():
                s = model.generate(**one, **options)
            separate.append(s[0].tolist())
        entry = {
            "sources": gen_src,
            "source_input_ids": batch["input_ids"].tolist(),
            "source_attention_mask": batch["attention_mask"].tolist(),
            "options": options,
            "num_beams": beams,
            "max_new_tokens": options.get("max_new_tokens", model.generation_config.max_length - 1),
            "output_ids": seqs,
            "texts": tok.batch_decode(seqs, skip_special_tokens=True),
            "output_ids_run_separately": separate,
        }
        entry["batched_equals_separate"] = [
            _strip_pad(a, pad) == _strip_pad(b, pad) for a, b in zip(seqs, separate)
        ]
        if beams == 1:
            entry["min_top1_margin"] = _min_margin(gen.scores)
        else:
            entry["sequences_scores"] = gen.sequences_scores.tolist()
        generate[label] = entry
    data = {"source": source, "target": target, "generate": generate}
    return arrays, data


def make_hf_marian(out_dir, full_size=False):
    """MarianMTModel (opus-mt layout) + MarianTokenizer: ids, teacher-forced logits, generate."""
    from transformers import AutoTokenizer
    from transformers import MarianMTModel

    name = "hf_marian"
    out = _fresh_dir(out_dir)
    with tempfile.TemporaryDirectory() as work:
        positions = 512 if full_size else TINY["positions"]
        tok = _marian_tokenizer(work, positions)
        vocab_size = len(tok.encoder)
        torch.manual_seed(_seed(name))
        model = MarianMTModel(_marian_config(vocab_size, full_size))
        _perturb(model, _seed(name), skip=("embed_positions",))
        _marian_generation_config(model)
        training = None
        if not full_size:
            training = _train(model, _marian_training_batches(tok), 600, 3e-3, _seed(name))
        arrays, data = _marian_reference(model, tok)
        model.save_pretrained(out)
        tok.save_pretrained(out)
    data["special_tokens"] = _special_tokens(tok)
    data["vocab_size"] = vocab_size
    data["training"] = training
    data["generation_config"] = json.loads((out / "generation_config.json").read_text())
    data["final_logits_bias_saved"] = "final_logits_bias" in _safetensors_keys(out)
    _save_npz(out, arrays)
    data["tied"] = _tied_info(model, out)
    _save_json(out, data)

    reloaded = MarianMTModel.from_pretrained(out).eval()
    rtok = AutoTokenizer.from_pretrained(out)
    r_arrays, r_data = _marian_reference(reloaded, rtok)
    _assert_same(arrays, r_arrays, name)
    for key in ("source", "target", "generate"):
        _assert_equal(data[key], r_data[key], f"{name} {key}")
    if not data["final_logits_bias_saved"]:
        raise AssertionError(f"{name}: final_logits_bias not in model.safetensors")
    return {
        "model_class": "transformers.MarianMTModel",
        "tokenizer_class": type(rtok).__name__,
        "description": "Marian opus-mt layout (tiny: d_model 32, 2+2 layers, 2 heads, ffn 64, "
        "64 positions; swish, scale_embedding, shared embeddings tied to lm_head, "
        "final_logits_bias), perturbed + briefly trained on a toy en->de corpus; joint "
        "vocab.json (</s>=0, <unk>=1, <pad>=last=decoder start). npz: padded teacher-forced "
        "batch + both sinusoidal tables.",
    }


# --------------------------------------------------------------------------

FIXTURES = {
    "hf_gpt2": make_hf_gpt2,
    "hf_bert": make_hf_bert,
    "hf_bert_model": make_hf_bert_model,
    "hf_bert_pretraining": make_hf_bert_pretraining,
    "hf_bert_cased": make_hf_bert_cased,
    "hf_marian": make_hf_marian,
}


def _versions():
    import google.protobuf
    import safetensors
    import sentencepiece
    import tokenizers
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "sentencepiece": sentencepiece.__version__,
        "protobuf": google.protobuf.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: this script's)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(FIXTURES),
        metavar="NAME",
        help="fixtures to write (default: all)",
    )
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="real widths (GPT-2 124M, BERT-base, opus-mt base) with the tiny tokenizers",
    )
    args = parser.parse_args(argv)

    names = args.only or list(FIXTURES)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / MANIFEST
    manifest = {"language": {}}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    total = 0
    for name in names:
        folder = args.out / name
        info = FIXTURES[name](folder, full_size=args.full_size)
        files = sorted(p.name for p in folder.iterdir())
        size = sum((folder / f).stat().st_size for f in files)
        total += size
        with np.load(folder / "reference.npz") as ref:
            arrays = {k: f"{ref[k].dtype}{list(ref[k].shape)}" for k in ref.files}
        manifest["language"][name] = dict(info, files=files, reference_npz=arrays)
        print(f"{name}: {len(files)} files, {size / 1024:.1f} KiB, reloaded outputs match")
    manifest = {
        "versions": _versions(),
        "full_size": args.full_size,
        "language": dict(sorted(manifest["language"].items())),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"written: {total / 1024:.1f} KiB in {len(names)} fixtures")


if __name__ == "__main__":
    main()
