"""Dataset builders used by guides, demos and tests."""

from keras_seq.data.char_corpus import CHAR_CORPUS_VOCABULARY
from keras_seq.data.char_corpus import char_corpus_data
from keras_seq.data.char_corpus import grammar_text
from keras_seq.data.char_vocabulary import CharVocabulary
from keras_seq.data.date_translation import DATE_FORMATS
from keras_seq.data.date_translation import DATE_SOURCE_LENGTH
from keras_seq.data.date_translation import DATE_SOURCE_VOCABULARY
from keras_seq.data.date_translation import DATE_TARGET_LENGTH
from keras_seq.data.date_translation import DATE_TARGET_VOCABULARY
from keras_seq.data.date_translation import date_translation_data
from keras_seq.data.date_translation import decode_dates
from keras_seq.data.date_translation import encode_dates
from keras_seq.data.date_translation import format_date
from keras_seq.data.date_translation import random_dates
from keras_seq.data.masked_lm import mask_tokens
from keras_seq.data.reversal import reversal_data
from keras_seq.data.shapes_detection import SHAPES_CLASSES
from keras_seq.data.shapes_detection import shapes_detection_data
from keras_seq.data.shapes_detection_files import detection_targets
from keras_seq.data.shapes_detection_files import write_shapes_detection_files
from keras_seq.data.tbptt import truncated_bptt_dataset
from keras_seq.data.teacher_forcing import teacher_forcing_inputs
