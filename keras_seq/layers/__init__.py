"""Public layers of keras_seq."""

from keras_seq.layers.attention.get_attention import get_attention
from keras_seq.layers.attention.multi_head_attention import MultiHeadAttention
from keras_seq.layers.blocks.mlp import MLP
from keras_seq.layers.blocks.transformer_decoder import TransformerDecoder
from keras_seq.layers.blocks.transformer_encoder import TransformerEncoder
from keras_seq.layers.embeddings.position_embedding import PositionEmbedding
from keras_seq.layers.embeddings.sine_position_encoding import SinePositionEncoding
from keras_seq.layers.embeddings.token_and_position_embedding import TokenAndPositionEmbedding
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.get_cell import get_cell
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
from keras_seq.layers.recurrent.truncated_bptt import TruncatedBPTT
