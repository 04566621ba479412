"""`GenerativeTask.generate` checks token-id inputs before decoding, for every family."""

import re

import numpy as np
import pytest

from keras_seq.models import RNNBackbone
from keras_seq.models import RNNCausalLM
from keras_seq.models import RNNSeq2SeqBackbone
from keras_seq.models import RNNSeq2SeqLM
from keras_seq.utils import check_fit_data
from tests.model_families import VOCABULARY
from tests.model_families import make_case

# family -> the key of the token ids in its training inputs (None: the inputs are the ids)
TOKEN_FAMILIES = {
    "gpt": "token_ids",
    "rnn_language_model": None,
    "seq2seq_bahdanau": "source",
    "transformer_seq2seq": "source",
}


def _ids(family, ids):
    key = TOKEN_FAMILIES[family]
    return ids if key is None else {key: ids}


def _name(family):
    key = TOKEN_FAMILIES[family]
    return "inputs" if key is None else f"inputs['{key}']"


@pytest.mark.parametrize("family", sorted(TOKEN_FAMILIES))
@pytest.mark.parametrize("deprecated", [False, True])
def test_out_of_vocabulary_and_float_ids_are_refused(family, deprecated):
    case = make_case(family)
    model = case.build_deprecated() if deprecated else case.build_model()
    name = _name(family)
    # Without the check: clamped to the last row under XLA, wrapped to V - 1 eagerly.
    for bad in (VOCABULARY, -1):
        ids = np.array([[3, bad, 4]], "int32")
        with pytest.raises(
            ValueError, match=r"must hold token ids in \[0, vocabulary_size\)"
        ) as info:
            model.generate(_ids(family, ids), 2, jit_compile=False)
        assert f"{name}[0, 1]={bad} (vocabulary_size={VOCABULARY})" in str(info.value)
    with pytest.raises(TypeError, match=re.escape(f"{name} of dtype float32")):
        model.generate(_ids(family, np.array([[3.0, 4.0]], "float32")), 2, jit_compile=False)


def test_an_encoder_decoder_checks_the_source_vocabulary():
    model = RNNSeq2SeqLM(RNNSeq2SeqBackbone(5, 30, embedding_dim=4, hidden_dim=4))
    with pytest.raises(ValueError, match=r"inputs\[0, 0\]=7 \(vocabulary_size=5\)"):
        model.generate(np.array([[7, 1]]), 2, jit_compile=False)
    tokens = model.generate(np.array([[4, 1]]), 2, jit_compile=False)  # in range: decodes
    assert np.asarray(tokens).shape == (1, 2)


def test_image_captioners_take_images():
    case = make_case("image_captioner_rnn")
    tokens = case.build_model().generate(case.x["images"][:1], 2, jit_compile=False)
    assert np.asarray(tokens).shape == (1, 2)


def _with_negative_id(case, family):
    key = TOKEN_FAMILIES[family]
    x = {k: v.copy() for k, v in case.x.items()} if key else case.x.copy()
    (x[key] if key else x)[1, 2] = -3  # an embedding would wrap it to VOCABULARY - 3
    return x


def test_check_fit_data_checks_the_token_ids():
    model = RNNCausalLM(RNNBackbone(5, embedding_dim=2, hidden_dim=2))
    model.compile("sgd", "sparse_categorical_crossentropy", jit_compile=False)
    x = np.array([[1, 2, 3], [4, -1, 2]])  # an embedding would wrap -1 to 4
    with pytest.raises(ValueError, match=re.escape("[1, 1]=-1")):
        check_fit_data(model, x, x)
    check_fit_data(model, np.abs(x), x)  # valid ids pass


@pytest.mark.parametrize("family", ["rnn_language_model", "seq2seq_bahdanau", "gpt"])
def test_check_fit_data_checks_the_token_ids_of_every_layout(family):
    case = make_case(family)
    model = case.build(jit_compile=False)
    with pytest.raises(ValueError, match=re.escape("[1, 2]=-3")):
        check_fit_data(model, _with_negative_id(case, family), case.y)
    check_fit_data(model, case.x, case.y)
