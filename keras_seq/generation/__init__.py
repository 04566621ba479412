"""Decoding: greedy, beam search and sampling over any model with the generation protocol;
speculative greedy decoding with a draft model."""

from keras_seq.generation.beam_search import beam_search
from keras_seq.generation.generate import STRATEGIES
from keras_seq.generation.generate import generate
from keras_seq.generation.generate import stream_generate
from keras_seq.generation.protocol import check_generative
from keras_seq.generation.sampling import sample_search
from keras_seq.generation.speculative import speculative_generate
