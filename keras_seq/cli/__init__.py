"""The `keras-seq` command line (the console script's entry point is `main`).

Each subcommand is one function decorated with `@subcommand(...)`: the decorator declares the
subcommand's name, help and arguments, and the function receives the parsed `argparse.Namespace`
and returns an exit code. Adding a subcommand (`demo`, `train`, `generate`, ...) means writing one
such function in a module of this package (`keras_seq.cli.base` holds the shared parts) and
importing it below.

Start-up stays light: this module imports the standard library and the stdlib-only tables it
describes the subcommands with (`keras_seq.recipes.registry`, `keras_seq.decoding_options`,
and `keras_seq.recipes.model_sources`, which checks the MODEL of `generate`),
and in the `keras-seq` process the package leaves its subpackages out
(`keras_seq.subpackages`), so `--help`, `--version` and usage errors answer without importing
TensorFlow. A subcommand imports what it runs after its own checks, inside a
`with quiet_tensorflow():` block, which hides TensorFlow's C++ log lines (its start-up lines
among them) unless the block raises; there `import_subpackages()` imports every subpackage,
so that every class a `.keras` file names is registered.
"""

import argparse
import sys
import textwrap

# The subcommands register themselves when imported, in this order (`keras-seq --help`).
# isort: off
from keras_seq.cli import info_demo  # noqa: F401
from keras_seq.cli import train  # noqa: F401
from keras_seq.cli import generate  # noqa: F401
from keras_seq.cli import evaluate_predict  # noqa: F401

# isort: on
from keras_seq.cli.base import _SUBCOMMANDS
from keras_seq.cli.base import PROG
from keras_seq.cli.base import BackendError
from keras_seq.cli.base import UsageError
from keras_seq.cli.base import argument  # noqa: F401
from keras_seq.cli.base import quiet_tensorflow  # noqa: F401
from keras_seq.cli.base import subcommand  # noqa: F401
from keras_seq.version import __version__


def _wrap_description(text, width=79):
    """Wrap each paragraph of `text` (paragraphs are separated by blank lines) to `width`
    columns, except paragraphs whose lines are indented (tables, kept as written)."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = paragraph.split("\n")
        if any(line.startswith(" ") for line in lines):
            paragraphs.append(paragraph)
        else:
            paragraphs.append(textwrap.fill(" ".join(lines), width))
    return "\n\n".join(paragraphs)


def build_parser():
    """The `argparse` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Pluggable Keras 3 layers for sequence and vision-transformer models.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    # Not `required=True`: argparse would then report a missing COMMAND before an unknown option
    # (`keras-seq --bogus`); `main` checks both, unknown options first.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, description, arguments, function in _SUBCOMMANDS:
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=_wrap_description(description),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        for flags, kwargs in arguments:
            sub.add_argument(*flags, **kwargs)
        sub.set_defaults(handler=function, subparser=sub)
    return parser


def main(argv=None):
    """Run `keras-seq` with `argv` (default: `sys.argv[1:]`) and return the exit code.

    `--help`, `--version` and usage errors raise `SystemExit` from `argparse` (code 0 for the first
    two, 2 for usage errors, with a message naming the bad option or value on stderr). A
    subcommand that needs TensorFlow, run on another Keras backend (`KERAS_BACKEND`), returns 1
    with a message naming both on stderr.
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # With the usage of the subcommand they were given to, when there is one.
        culprit = args.subparser if args.command is not None else parser
        culprit.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        names = ", ".join(name for name, *_ in _SUBCOMMANDS)
        parser.error(f"missing COMMAND (choose from {names})")
    try:
        return int(args.handler(args) or 0)
    except UsageError as error:
        args.subparser.error(str(error))
    except BackendError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
