"""Capture of file descriptor 2, where TensorFlow's C++ logging writes (past `sys.stderr`).

TensorFlow 2.21 logs through absl, and its first lines come while its libraries load, before
`TF_CPP_MIN_LOG_LEVEL` is read: "All log messages before absl::InitializeLog() is called are
written to STDERR", then "oneDNN custom operations are on ..." and "Could not find cuda
drivers on your machine ..." (severity I, printed whatever the variable says). The variable
does hide the later start-up lines (e.g. the CPU instructions line of `cpu_feature_guard`).
Only what is written to the file descriptor can be held back, so two context managers capture
it:

- `quiet_tensorflow_start_up()`, around `import keras_seq`'s first import of TensorFlow:
  sets `TF_CPP_MIN_LOG_LEVEL=1` unless the user has set it, and afterwards writes back every
  captured line except the absl lines the variable would have hidden had it applied (the
  severities that level hides, `hide_log_lines`), so that nothing else written meanwhile (a
  Python warning, a TensorFlow warning) is lost.
- `quiet_stderr()`, around the work of a `keras-seq` subcommand: drops everything, unless the
  block raises.

`TF_CPP_MIN_LOG_LEVEL=0` turns both off. This module imports nothing but the standard library.
"""

import contextlib
import os
import re
import sys
import tempfile

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# What `import keras_seq` sets when the user has not: hide TensorFlow's INFO lines only.
DEFAULT_IMPORT_LOG_LEVEL = "1"
# An absl log line: severity letter, MMDD, time (TensorFlow writes 00:00:<epoch seconds>),
# thread id, file:line] message.
_ABSL_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
_SEVERITIES = "IWEF"  # TF_CPP_MIN_LOG_LEVEL 1 hides I, 2 hides I and W, 3 hides I, W and E
_ABSL_PRE_INIT_NOTE = "WARNING: All log messages before absl::InitializeLog() is called"


@contextlib.contextmanager
def _capture_fd2(replay):
    """Point file descriptor 2 at a temporary file inside the block; afterwards write
    `replay(captured, failed)` back to it (`captured`: the bytes written, `failed`: whether
    the block raised). Captures nothing where file descriptor 2 cannot be duplicated (closed,
    as under `pythonw`)."""
    try:
        sys.stderr.flush()
        saved_fd = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    failed = True
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            captured.seek(0)
            data = replay(captured.read(), failed)
            if data:
                with contextlib.suppress(OSError):
                    os.write(2, data)


def _log_level():
    """The integer value of `TF_CPP_MIN_LOG_LEVEL`, 0 when it is not a number."""
    try:
        return int(os.environ.get(LOG_LEVEL_VARIABLE, "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def quiet_stderr():
    """Drop what is written to file descriptor 2 inside the block, unless the block raises.

    Sets `TF_CPP_MIN_LOG_LEVEL=2` when the user has not set it; the block's writes to file
    descriptor 2 are captured and dropped, or written back if the block raises, so nothing
    that explains a failure is lost. `TF_CPP_MIN_LOG_LEVEL=0` turns the capture off.
    """
    os.environ.setdefault(LOG_LEVEL_VARIABLE, "2")
    if os.environ[LOG_LEVEL_VARIABLE] == "0":
        yield
        return
    with _capture_fd2(lambda captured, failed: captured if failed else b""):
        yield


def remove_hidden_log_lines(text, level):
    """`text` without the absl log lines that `TF_CPP_MIN_LOG_LEVEL=level` hides.

    Lines of severity I are dropped from level 1, W from 2, E from 3, with absl's note that
    the lines before `absl::InitializeLog()` go to stderr; every other line is kept.

    Args:
        text: str. What was written to stderr.
        level: int. The value of `TF_CPP_MIN_LOG_LEVEL`.

    Returns:
        str: the kept lines, each with its line ending.

    Example:
    ```python
    from keras_seq.stderr_capture import remove_hidden_log_lines

    note = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    info = "I0000 00:00:1796588311.945531    4956 port.cc:153] oneDNN custom operations are on."
    warning = "W0000 00:00:1796588311.945815    4956 cudart_stub.cc:31] a warning"
    text = "\\n".join([note, info, warning, "UserWarning: from Python", ""])
    assert remove_hidden_log_lines(text, level=1) == f"{warning}\\nUserWarning: from Python\\n"
    assert remove_hidden_log_lines(text, level=2) == "UserWarning: from Python\\n"
    assert remove_hidden_log_lines(text, level=0) == text
    ```
    """
    if level < 1:
        return text
    hidden = _SEVERITIES[: min(level, len(_SEVERITIES) - 1)]
    kept = []
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match and match.group(1) in hidden:
            continue
        if line.startswith(_ABSL_PRE_INIT_NOTE):
            continue
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def hide_log_lines(level):
    """Capture file descriptor 2 inside the block; afterwards write back what
    `remove_hidden_log_lines(captured, level)` keeps, or everything when the block raises.

    Example:
    ```python
    import os

    from keras_seq.stderr_capture import hide_log_lines

    with hide_log_lines(level=1):  # stderr shows only the second line, after the block
        os.write(2, b"I0000 00:00:1796588311.945531    4956 port.cc:153] oneDNN ...\\n")
        os.write(2, b"a line that is not TensorFlow's INFO\\n")
    ```
    """

    def replay(captured, failed):
        if failed:
            return captured
        text = captured.decode("utf-8", errors="surrogateescape")
        return remove_hidden_log_lines(text, level).encode("utf-8", errors="surrogateescape")

    with _capture_fd2(replay):
        yield


@contextlib.contextmanager
def quiet_tensorflow_start_up():
    """Keep TensorFlow's start-up lines off stderr while the block imports it.

    When TensorFlow is not imported yet: sets `TF_CPP_MIN_LOG_LEVEL=1` unless the user set it,
    and runs the block in `hide_log_lines` at that level. Does nothing when TensorFlow is
    already imported (its start-up lines are out) or with `TF_CPP_MIN_LOG_LEVEL=0`.
    """
    if "tensorflow" in sys.modules:
        yield
        return
    os.environ.setdefault(LOG_LEVEL_VARIABLE, DEFAULT_IMPORT_LOG_LEVEL)
    level = _log_level()
    if level < 1:
        yield
        return
    with hide_log_lines(level):
        yield
