"""Public models of keras_seq: functional models whose config is their constructor arguments."""

from keras_seq.models.bert.bert import BERT
from keras_seq.models.bert.bert_backbone import BERTBackbone
from keras_seq.models.bert.bert_masked_lm import BERTMaskedLM
from keras_seq.models.bert.bert_text_classifier import BERTTextClassifier
from keras_seq.models.captioning.captioning_cnn_backbone import CaptioningCNNBackbone
from keras_seq.models.captioning.rnn_image_captioner import RNNImageCaptioner
from keras_seq.models.captioning.transformer_image_captioner import TransformerImageCaptioner
from keras_seq.models.detr.detr import DETR
from keras_seq.models.detr.detr_backbone import DETRBackbone
from keras_seq.models.detr.detr_object_detector import DETRObjectDetector
from keras_seq.models.gpt.gpt import GPT
from keras_seq.models.gpt.gpt_backbone import GPTBackbone
from keras_seq.models.gpt.gpt_causal_lm import GPTCausalLM
from keras_seq.models.image_captioner import ImageCaptioner
from keras_seq.models.rnn.rnn_backbone import RNNBackbone
from keras_seq.models.rnn.rnn_causal_lm import RNNCausalLM
from keras_seq.models.rnn_language_model import RNNLanguageModel
from keras_seq.models.seq2seq import Seq2Seq
from keras_seq.models.swin.swin_backbone import SwinBackbone
from keras_seq.models.swin.swin_image_classifier import SwinImageClassifier
from keras_seq.models.swin.swin_transformer import SwinTransformer
from keras_seq.models.transformer_seq2seq import TransformerSeq2Seq
from keras_seq.models.vit.vision_transformer import VisionTransformer
from keras_seq.models.vit.vit_backbone import ViTBackbone
from keras_seq.models.vit.vit_image_classifier import ViTImageClassifier
