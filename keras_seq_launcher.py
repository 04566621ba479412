"""Entry point of the `keras-seq` console script; it lives outside the `keras_seq` package.

`import keras_seq` imports TensorFlow (the package imports every layer so that `.keras` files
naming them load), and TensorFlow 2.21 writes start-up lines to stderr while it loads ("All
log messages before absl::InitializeLog() ...", oneDNN, CUDA stubs) whatever
`TF_CPP_MIN_LOG_LEVEL` says. A console script pointing into the package would import it, and
print them, before any code of ours runs; starting here lets `quiet_stderr` hide them. This
module imports nothing but the standard library.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def quiet_stderr():
    """Drop what is written to file descriptor 2 inside the block, unless the block raises.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` when the user has not set it; the block's writes to file
    descriptor 2 (where TensorFlow's C++ logging goes, past `sys.stderr`) are captured and
    dropped, or written back if the block raises, so nothing that explains a failure is
    lost. `TF_CPP_MIN_LOG_LEVEL=0` turns the capture off.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


def main(argv=None):
    """Import `keras_seq.cli` quietly, then run it (see `keras_seq.cli.main`)."""
    with quiet_stderr():
        from keras_seq import cli
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
