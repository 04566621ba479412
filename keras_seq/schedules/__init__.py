"""Learning-rate schedules."""

from keras_seq.schedules.transformer_schedule import TransformerSchedule
