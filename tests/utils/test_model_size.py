"""check_model_size: hostile `.keras` configs fail fast with a clear error, in safe mode."""

import os
import time

import keras
import numpy as np
import pytest

from keras_seq.models import BERTBackbone
from keras_seq.models import GPTBackbone
from keras_seq.models import GPTCausalLM
from keras_seq.models import RNNBackbone
from keras_seq.models import SwinBackbone
from keras_seq.models import TransformerSeq2SeqBackbone
from keras_seq.models import ViTBackbone
from keras_seq.utils.model_size import check_model_size
from keras_seq.utils.model_size import memory_bytes
from tests.utils.edited_files import TINY_GPT
from tests.utils.edited_files import edit_backbone_config


@pytest.fixture(scope="module")
def saved_gpt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("gpt") / "gpt.keras")
    GPTCausalLM(GPTBackbone(**TINY_GPT)).save(path)
    return path


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"num_layers": 1_000_000}, r"num_layers=1000000 .*KERAS_SEQ_MAX_LAYERS"),
        ({"vocabulary_size": 10**12}, r"vocabulary_size=1000000000000.*KERAS_SEQ_MAX_PARAMETERS"),
        ({"sequence_length": 10**12}, r"sequence_length=1000000000000"),
        (
            {"hidden_dim": 2**20, "num_heads": 1, "intermediate_dim": 2**22},
            r"hidden_dim=1048576, intermediate_dim=4194304",
        ),
    ],
)
def test_hostile_config_fails_fast_in_safe_mode(saved_gpt, tmp_path, changes, match):
    path = edit_backbone_config(saved_gpt, str(tmp_path / "hostile.keras"), **changes)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        keras.saving.load_model(path, safe_mode=True)
    assert time.perf_counter() - start < 5.0


def test_limits_from_environment(saved_gpt, tmp_path, monkeypatch):
    # num_layers=5 is no problem by default: the file is refused (5 blocks, 2 saved) by the
    # weights check. With the layer limit at 4 the constructor refuses it first.
    path = edit_backbone_config(saved_gpt, str(tmp_path / "five.keras"), num_layers=5)
    monkeypatch.setenv("KERAS_SEQ_MAX_LAYERS", "4")
    with pytest.raises(ValueError, match=r"num_layers=5 would create 5 blocks.*limit of 4"):
        keras.saving.load_model(path)
    monkeypatch.delenv("KERAS_SEQ_MAX_LAYERS")
    exact = GPTBackbone(**TINY_GPT).count_params()
    monkeypatch.setenv("KERAS_SEQ_MAX_PARAMETERS", str(exact // 10))
    with pytest.raises(ValueError, match=r"KERAS_SEQ_MAX_PARAMETERS=\d+"):
        keras.saving.load_model(saved_gpt)
    monkeypatch.setenv("KERAS_SEQ_MAX_PARAMETERS", str(exact))
    assert keras.saving.load_model(saved_gpt).backbone.count_params() == exact
    monkeypatch.setenv("KERAS_SEQ_MAX_PARAMETERS", "lots")
    with pytest.raises(ValueError, match=r"`KERAS_SEQ_MAX_PARAMETERS` must be a positive"):
        GPTBackbone(**TINY_GPT)


@pytest.mark.parametrize(
    "cls, config",
    [
        (GPTBackbone, TINY_GPT),
        (
            BERTBackbone,
            {
                "vocabulary_size": 30,
                "num_layers": 2,
                "num_heads": 2,
                "hidden_dim": 8,
                "intermediate_dim": 16,
                "max_sequence_length": 12,
            },
        ),
        (
            RNNBackbone,
            {"vocabulary_size": 30, "embedding_dim": 6, "hidden_dim": 8, "num_layers": 2},
        ),
        (
            TransformerSeq2SeqBackbone,
            {
                "vocabulary_size": 30,
                "num_encoder_layers": 1,
                "num_decoder_layers": 2,
                "hidden_dim": 8,
                "num_heads": 2,
                "intermediate_dim": 16,
            },
        ),
        (
            ViTBackbone,
            {
                "image_shape": (8, 8, 3),
                "patch_size": 4,
                "num_layers": 2,
                "hidden_dim": 8,
                "num_heads": 2,
                "intermediate_dim": 16,
            },
        ),
        (
            SwinBackbone,
            {
                "image_shape": (16, 16, 3),
                "patch_size": 2,
                "hidden_dim": 8,
                "num_layers": (2, 1),
                "num_heads": (2, 2),
                "window_size": 4,
            },
        ),
    ],
)
def test_estimate_is_a_lower_bound(cls, config, monkeypatch):
    # A limit of exactly the model's parameter count (Keras' count) builds it: the
    # estimate never exceeds the real size, so no model that fits is refused.
    exact = cls(**config).count_params()
    monkeypatch.setenv("KERAS_SEQ_MAX_PARAMETERS", str(exact))
    assert cls(**config).count_params() == exact


def test_memory_limit_and_dtype():
    memory = memory_bytes()
    assert memory is not None and 0 < memory <= os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES"
    )
    # float32 weights take 4 bytes, bfloat16 ones 2: a count that fits only as bfloat16.
    count = memory // 3
    check_model_size("Model", {"units": count}, [(1, "units")], dtype="bfloat16")
    with pytest.raises(ValueError, match=r"Model with units=\d+ would hold at least"):
        check_model_size("Model", {"units": count}, [(1, "units")], dtype="float32")


def test_large_but_fitting_model_is_not_refused():
    # A vocabulary of 50,000 at width 8: far below any machine's memory.
    backbone = GPTBackbone(**{**TINY_GPT, "vocabulary_size": 50_000})
    assert backbone.count_params() > 50_000 * 8
    np.testing.assert_array_equal(backbone.token_embedding.embeddings.shape, (50_000, 8))
