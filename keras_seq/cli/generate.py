"""`keras-seq generate`: text from a saved language or seq2seq model, or a checkpoint."""

import sys

from keras_seq.cli.base import UsageError
from keras_seq.cli.base import argument
from keras_seq.cli.base import finite_float
from keras_seq.cli.base import non_negative_int
from keras_seq.cli.base import positive_float
from keras_seq.cli.base import positive_int
from keras_seq.cli.base import probability
from keras_seq.cli.base import quiet_tensorflow
from keras_seq.cli.base import subcommand
from keras_seq.decoding_options import OPTION_DEFAULTS
from keras_seq.decoding_options import STRATEGY_OPTIONS
from keras_seq.recipes import model_sources
from keras_seq.subpackages import import_subpackages


@subcommand(
    "generate",
    help="generate text from a saved language or seq2seq model (.keras) or a GPT-2 / Marian "
    "checkpoint",
    description=(
        "Load a causal language model (RNNCausalLM, GPTCausalLM) or a sequence-to-sequence "
        "model (RNNSeq2SeqLM, TransformerSeq2SeqLM; their deprecated 0.1 classes too) saved "
        "as .keras, or a checkpoint: GPT-2 with GPTCausalLM.from_preset, Marian translation "
        "(opus-mt) with TransformerSeq2SeqLM.from_preset (a Hugging Face transformers "
        "directory, a keras_seq preset directory, or an hf://owner/name handle, downloaded "
        "into huggingface_hub's cache; a keras-hub GPT-2 preset directory, name such as "
        "gpt2_base_en, or kaggle:// handle), and print one line per --prompt: "
        "a language model's prompt and continuation, a seq2seq model's output. A model with "
        "a tokenizer (a checkpoint's tokenizer files, or one saved with the model) encodes "
        "and decodes the text, and decodes as the checkpoint's generation config says "
        "(Marian: beam search) unless --strategy and its options are given. Otherwise text is "
        "encoded and decoded with vocabulary.json (written by `keras-seq train char-lm` and "
        "`seq2seq-attention` beside model.keras, or given with --vocabulary); without one, "
        "prompts and outputs are token ids separated by spaces. Other sequence-to-sequence "
        "checkpoints (T5, BART, ...) are not supported."
    ),
    arguments=[
        argument(
            "model_path",
            metavar="MODEL",
            help="a saved model (RUN_DIR/model.keras), a checkpoint or preset directory, "
            "hf://owner/name[@revision], or a keras-hub preset name or kaggle:// handle",
        ),
        argument(
            "--prompt",
            action="append",
            help="text to continue or translate (repeat for several prompts)",
        ),
        argument(
            "--prompts-file",
            metavar="FILE",
            help="more prompts, one per line (- reads standard input); empty lines are skipped",
        ),
        argument(
            "--vocabulary",
            metavar="PATH",
            help="vocabulary.json (default: the one beside MODEL, if any; not for a model "
            "with a tokenizer)",
        ),
        argument(
            "--max-new-tokens",
            type=positive_int,
            help="tokens to generate (default: the vocabulary file's, else the "
            "checkpoint's generation config, else 32)",
        ),
        argument(
            "--strategy",
            choices=list(STRATEGY_OPTIONS),
            help="decoding strategy (default: the checkpoint's generation config, else greedy)",
        ),
        argument(
            "--temperature",
            type=positive_float,
            help=f"sampling temperature ({OPTION_DEFAULTS['temperature']})",
        ),
        argument(
            "--top-k",
            type=positive_int,
            help=f"top_k: sample among the k best ({OPTION_DEFAULTS['top_k']})",
        ),
        argument(
            "--top-p",
            type=probability,
            help=f"top_p: nucleus probability ({OPTION_DEFAULTS['top_p']})",
        ),
        argument(
            "--num-beams",
            type=positive_int,
            help=f"beam: beam width ({OPTION_DEFAULTS['num_beams']})",
        ),
        argument(
            "--length-penalty",
            type=finite_float,
            help=f"beam: length exponent ({OPTION_DEFAULTS['length_penalty']})",
        ),
        argument(
            "--early-stopping",
            choices=["exact", "false", "true"],
            help="beam: when a search ends; exact: never misses a better hypothesis; false "
            "/ true: Hugging Face's early_stopping rules; a checkpoint may set its own "
            f"({OPTION_DEFAULTS['early_stopping']})",
        ),
        argument("--seed", type=non_negative_int, help="sampling seed (default: random)"),
        argument(
            "--jit-compile",
            action="store_true",
            help="compile the decoding loop with XLA: a few seconds once, faster per token "
            "(pays off for long outputs; default: off)",
        ),
        argument(
            "--stop-token-id",
            type=non_negative_int,
            help="stop at this token id (default: the tokenizer's end token, else the "
            "vocabulary file's, else none)",
        ),
        argument(
            "--repetition-penalty",
            type=positive_float,
            help="divide (multiply) the positive (negative) score of every token already in "
            "the prompt or output by this, as Hugging Face does (default: off)",
        ),
        argument(
            "--no-repeat-ngram-size",
            type=positive_int,
            help="never repeat an n-gram of this size (default: off)",
        ),
        argument(
            "--min-new-tokens",
            type=non_negative_int,
            help="no stop token before this many new tokens (default: 0)",
        ),
        argument(
            "--stream",
            action="store_true",
            help="print the text as the tokens come, one prompt after the other (greedy and "
            "sampling strategies)",
        ),
        argument(
            "--num-return-sequences",
            type=positive_int,
            help="outputs per prompt, one line each: independent samples, or beam search's "
            "best hypotheses, best first (default: 1)",
        ),
        argument(
            "--stop-string",
            action="append",
            metavar="TEXT",
            help="end an output once its text contains TEXT (repeat for several; a model "
            "with a tokenizer, greedy and sampling strategies)",
        ),
    ],
)
def generate_command(args):
    # MODEL first, from the file system alone (no TensorFlow yet); the other checks need
    # the library (the vocabulary's classes, the decoding options' table).
    try:
        model_sources.model_source(args.model_path)
    except model_sources.GenerateOptionError as error:
        raise UsageError(str(error)) from None
    args.prompt = list(args.prompt or []) + _read_prompts_file(args.prompts_file)
    if not args.prompt:
        raise UsageError(
            "argument --prompt: at least one prompt is required (--prompt TEXT, or "
            "--prompts-file FILE). Received: none"
        )
    with quiet_tensorflow():
        import_subpackages()
        from keras_seq.recipes import generate_text

    options = {
        name: getattr(args, name)
        for name in (
            "temperature",
            "top_k",
            "top_p",
            "num_beams",
            "length_penalty",
            "early_stopping",
            "seed",
        )
        if getattr(args, name) is not None
    }
    if "early_stopping" in options:
        options["early_stopping"] = {"exact": "exact", "false": False, "true": True}[
            options["early_stopping"]
        ]
    processing = {
        name: getattr(args, name)
        for name in ("repetition_penalty", "no_repeat_ngram_size", "min_new_tokens")
        if getattr(args, name) is not None
    }
    if args.num_return_sequences is not None:
        processing["num_return_sequences"] = args.num_return_sequences
    if args.stop_string:
        processing["stop_strings"] = list(args.stop_string)
    try:
        vocabulary = generate_text.check_generate_options(
            args.model_path, args.strategy, options, args.vocabulary, args.prompt
        )
        with quiet_tensorflow():
            texts = generate_text.generate_from_saved_model(
                args.model_path,
                args.prompt,
                vocabulary=vocabulary,
                max_new_tokens=args.max_new_tokens,
                stop_token_id=args.stop_token_id,
                strategy=args.strategy,
                jit_compile=args.jit_compile,
                **options,
                **processing,
                **({"write": _write_flushed} if args.stream else {}),
            )
    except generate_text.GenerateOptionError as error:
        raise UsageError(str(error)) from None
    if not args.stream:
        for text in texts:
            print(text)
    return 0


def _write_flushed(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def _read_prompts_file(path):
    """The non-empty lines of `path` (`-`: standard input), without their line ends; `[]`
    for `None`."""
    if path is None:
        return []
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"argument --prompts-file: cannot read it ({type(error).__name__}: {error}). "
            f"Received: {path!r}"
        ) from None
    return [line for line in lines if line.strip()]
