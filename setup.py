"""Packaging for keras-seq (import name `keras_seq`)."""

import pathlib

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
version = {}
exec((HERE / "keras_seq" / "version.py").read_text(), version)

setup(
    name="keras-seq",
    version=version["__version__"],
    description=(
        "Pluggable Keras 3 layers for sequence and vision-transformer models: "
        "recurrent cells, attention, transformers, decoding."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_seq", "keras_seq.*"]),
    install_requires=[
        "tensorflow>=2.21",
        "keras>=3.15",
        "keras-hub>=0.32",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9.10 imports it to prepare a builder that lives in a package
        # (keras_seq.data.shapes_detection_builder) but does not declare it.
        "importlib_resources>=7.1",
        "tensorboard>=2.21",
        "numpy>=1.26",
        # Version comparisons (keras_seq.utils.multi_worker); Keras depends on it too.
        "packaging>=23",
        # The plots of `keras-seq demo` / `keras-seq train` and the guides (Agg backend).
        "matplotlib>=3.11",
        # LoRA adapter files (keras_seq.models.lora) and checkpoints (keras_seq.models.checkpoints),
        # read with its NumPy reader.
        "safetensors>=0.8",
        # `hf://owner/name` checkpoint handles: download into, or offline read from, its cache.
        "huggingface_hub>=2.4",
        # MarianTokenizer's SentencePiece ops (keras_seq.models.marian_tokenizer); keras-hub
        # depends on it too.
        "tensorflow-text>=2.21",
        # BERTTokenizer's eager path for Python strings (Hugging Face's Rust WordPiece);
        # keras-hub depends on it too.
        "tokenizers>=0.23",
    ],
    extras_require={
        "tests": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "scipy>=1.11",
            # Its wheel bundles the 8x8 digits the vision learning tests train on (offline).
            "scikit-learn>=1.9",
            # COCO's reference mAP: the tests compare keras_seq.metrics.mean_average_precision
            # with it (skipped where it is missing).
            "pycocotools>=2.0.11",
            # Property-based fuzzing (tests/test_fuzz.py); tested with 6.170.
            "hypothesis>=6.170",
            # The backend-neutral tests (marker `backends`) also run on JAX, on CPU
            # (KERAS_BACKEND=jax, see README.md); tested with 0.10.2.
            "jax>=0.10.2",
        ],
        "dev": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "scipy>=1.11",
            "scikit-learn>=1.9",
            "pycocotools>=2.0.11",
            "hypothesis>=6.170",
            "jax>=0.10.2",
            "ruff>=0.6",
            "tox>=4",
        ],
    },
    entry_points={"console_scripts": ["keras-seq=keras_seq.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
