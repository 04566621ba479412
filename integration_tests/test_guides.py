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
# The checkpoint the fine-tuning guide loads instead of downloading its default one: a tiny
# Hugging Face ViT classifier stored in the repository (the other guides ignore it).
CHECKPOINT = ROOT / "tests" / "models" / "checkpoint_fixtures" / "hf_vit_classifier"


def test_guides_exist():
    assert GUIDES, f"no guides found in {GUIDES_DIR}"


# The longest guide (about 40 s in fast mode on 2 cores) runs with the slow tests.
SLOW_GUIDES = {"decoding_strategies"}


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
        KERAS_SEQ_GUIDE_CHECKPOINT=str(CHECKPOINT),
        HF_HUB_OFFLINE="1",  # nothing downloads in a test
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
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
