"""Public models of keras_seq: functional models whose config is their constructor arguments."""

from keras_seq.models.bert.bert import BERT
from keras_seq.models.bert.bert_masked_lm import BERTMaskedLM
from keras_seq.models.gpt.gpt import GPT
