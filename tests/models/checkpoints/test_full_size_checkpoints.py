"""Full-size checkpoints (ViT-B/16, Swin-T, DETR-R50) against transformers and timm themselves.

Opt-in: runs only where torch, transformers and timm are installed beside keras_seq (never in
CI), and with the slow tests. The fixture script writes each checkpoint at full size with the
reference library, with its outputs; keras_seq loads it and must match.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

from keras_seq.models import DETRObjectDetector
from keras_seq.models import SwinBackbone
from keras_seq.models import SwinImageClassifier
from keras_seq.models import ViTBackbone
from keras_seq.models import ViTImageClassifier

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("timm")

SCRIPT = (
    pathlib.Path(__file__).resolve().parents[1]
    / "checkpoint_fixtures"
    / "make_checkpoint_fixtures.py"
)
MODELS = {
    "hf_vit_model": ViTBackbone,
    "hf_vit_classifier": ViTImageClassifier,
    "hf_vit_classifier_sharded": ViTImageClassifier,
    "hf_swin_model": SwinBackbone,
    "hf_swin_classifier": SwinImageClassifier,
    "hf_detr_timm_backbone": DETRObjectDetector,
    "hf_detr_resnet_backbone": DETRObjectDetector,
    "timm_vit_token": ViTImageClassifier,
    "timm_vit_avg": ViTImageClassifier,
    "timm_vit_no_class_token": ViTImageClassifier,
    "timm_swin": SwinImageClassifier,
}


def _script():
    spec = importlib.util.spec_from_file_location("make_checkpoint_fixtures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_full_size_checkpoint_matches_reference(name, tmp_path):
    getattr(_script(), f"make_{name}")(str(tmp_path), full_size=True)
    reference = np.load(tmp_path / name / "reference.npz")
    model = MODELS[name].from_preset(str(tmp_path / name))
    outputs = model(reference["pixel_values"], training=False)
    if isinstance(outputs, dict):
        pairs = [(outputs["logits"], "logits"), (outputs["boxes"], "pred_boxes")]
    elif "logits" in reference.files:
        pairs = [(outputs, "logits")]
    else:
        outputs = np.asarray(outputs)
        pairs = [(outputs.reshape(outputs.shape[0], -1, outputs.shape[-1]), "last_hidden_state")]
    for actual, key in pairs:
        difference = float(np.max(np.abs(np.asarray(actual) - reference[key])))
        assert difference <= 1e-4, f"{key}: max abs difference {difference:.3g}"
