"""Handles: `hf://owner/name[@revision]` through huggingface_hub's cache, offline; parsing."""

import pathlib
import shutil

import numpy as np
import pytest
from huggingface_hub import constants as hub_constants

from keras_seq.models import ViTImageClassifier
from keras_seq.models.checkpoints import handles

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "checkpoint_fixtures"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _cache_with(tmp_path, repo_id, fixture, ref="main"):
    """A huggingface_hub cache (its documented layout: `models--owner--name/snapshots/<commit>`
    and `refs/<branch>` holding the commit) holding `fixture` as `repo_id`."""
    repo = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(FIXTURES / fixture, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / ref).write_text(COMMIT)
    return tmp_path / "hub"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """huggingface_hub offline (as `HF_HUB_OFFLINE=1` sets it) over a cache in `tmp_path`."""
    cache = _cache_with(tmp_path, "keras-seq/tiny-vit", "hf_vit_classifier")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_hf_handle_loads_from_the_cache_offline(offline_hub):
    reference = np.load(FIXTURES / "hf_vit_classifier" / "reference.npz")
    for handle in ("hf://keras-seq/tiny-vit", f"hf://keras-seq/tiny-vit@{COMMIT}"):
        model = ViTImageClassifier.from_preset(handle)
        logits = np.asarray(model(reference["pixel_values"], training=False))
        assert np.max(np.abs(logits - reference["logits"])) <= 1e-4
        assert model.label_names is not None


def test_hf_handle_not_in_the_cache_offline(offline_hub):
    # huggingface_hub's own error: it says the file is neither cached nor downloadable.
    with pytest.raises(Exception, match="(?i)offline|cache|local"):
        ViTImageClassifier.from_preset("hf://keras-seq/not-cached")


@pytest.mark.parametrize(
    "handle", ["hf://", "hf://owner", "hf://owner/", "hf://a/b/c", "hf://owner/name@"]
)
def test_malformed_hf_handles(handle):
    with pytest.raises(ValueError, match="hf://owner/name"):
        handles.parse_hf_handle(handle)


def test_hf_handle_parsing():
    assert handles.parse_hf_handle("hf://google/vit-base-patch16-224") == (
        "google/vit-base-patch16-224",
        None,
    )
    assert handles.parse_hf_handle("hf://owner/name@v1.0") == ("owner/name", "v1.0")


@pytest.mark.parametrize("preset", [None, 3, ""])
def test_preset_of_the_wrong_type(preset):
    with pytest.raises((TypeError, ValueError), match="preset"):
        ViTImageClassifier.from_preset(preset)
