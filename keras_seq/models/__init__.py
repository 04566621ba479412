"""Public models of keras_seq: functional models whose config is their constructor arguments."""

from keras_seq.models.bert.bert import BERT
from keras_seq.models.bert.bert_masked_lm import BERTMaskedLM
from keras_seq.models.detr.detr import DETR
from keras_seq.models.gpt.gpt import GPT
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.image_captioner import ImageCaptioner
from keras_seq.models.rnn_language_model import RNNLanguageModel
from keras_seq.models.rnn_seq2seq_backbone import RNNSeq2SeqBackbone
from keras_seq.models.rnn_seq2seq_lm import RNNSeq2SeqLM
from keras_seq.models.seq2seq import Seq2Seq
from keras_seq.models.swin.swin_transformer import SwinTransformer
from keras_seq.models.transformer_seq2seq import TransformerSeq2Seq
from keras_seq.models.transformer_seq2seq_backbone import TransformerSeq2SeqBackbone
from keras_seq.models.transformer_seq2seq_lm import TransformerSeq2SeqLM
from keras_seq.models.vit.vision_transformer import VisionTransformer
