"""Ready-made experiments behind the `keras-seq` command: the training recipes and the
demo."""
