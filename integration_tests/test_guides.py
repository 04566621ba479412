"""Every guide in guides/ runs to completion (on reduced sizes) in a fresh interpreter."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDES_DIR = ROOT / "guides"
GUIDES = sorted(GUIDES_DIR.glob("*.py"))
TIMEOUT_S = 300
# The checkpoint each fine-tuning guide loads instead of downloading its default one (passed
# in KERAS_SEQ_GUIDE_CHECKPOINT): tiny checkpoints written by transformers, stored in the
# repository. The other guides get no such variable.
FIXTURES = ROOT / "tests" / "models" / "checkpoint_fixtures"
GUIDE_CHECKPOINTS = {
    "fine_tuning_vision_checkpoints": FIXTURES / "hf_vit_classifier",
    "fine_tuning_bert_text_classifier": FIXTURES / "hf_bert_pretraining",
    "fine_tuning_gpt2_on_text": FIXTURES / "hf_gpt2",
}


def test_guides_exist():
    assert GUIDES, f"no guides found in {GUIDES_DIR}"
    assert set(GUIDE_CHECKPOINTS) <= {path.stem for path in GUIDES}
    assert all(path.is_dir() for path in GUIDE_CHECKPOINTS.values())


# The default run keeps the guides a newcomer starts with (getting started, and the three
# fine-tuning guides on checkpoints); the others run with the slow tests, to keep the default
# run near 15 minutes on 2 cores: each takes 30-60 s in fast mode, and default unit tests
# cover their APIs (decoding, blocks, custom components, tf.distribute, the vision, seq2seq,
# DETR and recurrent model families).
SLOW_GUIDES = {
    "decoding_strategies",
    "custom_components",
    "distributed_training",
    "transformers_from_blocks",
    "vision_transformers",
    "attention_and_seq2seq",
    "detr",
    "recurrent_networks",
    "fine_tuning_bert_text_classifier",
    "fine_tuning_gpt2_on_text",
    "fine_tuning_vision_checkpoints",
}


@pytest.mark.integration
@pytest.mark.parametrize(
    "guide",
    [
        pytest.param(path, marks=pytest.mark.slow) if path.stem in SLOW_GUIDES else path
        for path in GUIDES
    ],
    ids=[path.stem for path in GUIDES],
)
def test_guide_runs(guide, tmp_path):
    env = dict(
        os.environ,
        KERAS_SEQ_GUIDE_FAST="1",
        HF_HUB_OFFLINE="1",  # nothing downloads in a test
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.pop("KERAS_SEQ_GUIDE_CHECKPOINT", None)
    if guide.stem in GUIDE_CHECKPOINTS:
        env["KERAS_SEQ_GUIDE_CHECKPOINT"] = str(GUIDE_CHECKPOINTS[guide.stem])
    # Run from an empty directory so a guide cannot depend on, or litter, the checkout.
    result = subprocess.run(
        [sys.executable, str(guide)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"{guide.name} exited with code {result.returncode}.\n"
        f"--- stdout (tail) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (tail) ---\n{result.stderr[-3000:]}"
    )
