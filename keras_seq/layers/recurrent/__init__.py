"""Recurrent cells and the utilities around them."""

from keras_seq.layers.recurrent.attention_cell import AttentionCell
from keras_seq.layers.recurrent.attention_rnn import AttentionRNN
from keras_seq.layers.recurrent.elman_cell import ElmanCell
from keras_seq.layers.recurrent.get_cell import get_cell
from keras_seq.layers.recurrent.gru_cell import GRUCell
from keras_seq.layers.recurrent.lstm_cell import LSTMCell
from keras_seq.layers.recurrent.truncated_bptt import TruncatedBPTT
