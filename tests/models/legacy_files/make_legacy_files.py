"""Writes the `.keras` files of tests/models/test_legacy_files.py: one tiny model of every family
as saved by keras_seq 0.1.0 before the backbone / task redesign (commit 72242f0), with its
outputs on the family's test batch.

Run it from the repository root, with keras_seq checked out at that commit:

    git worktree add /tmp/keras_seq_0.1.0 72242f0
    (cd /tmp/keras_seq_0.1.0 && PYTHONPATH=. python tests/models/legacy_files/make_legacy_files.py \
        --output-dir "$OLDPWD/tests/models/legacy_files")
"""

import argparse
import pathlib

import keras
import numpy as np

from tests.model_families import FAMILIES
from tests.model_families import make_case


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=pathlib.Path, required=True)
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        keras.utils.set_random_seed(0)
        case = make_case(family)
        model = case.build_model()
        outputs = model.predict(case.x, verbose=0)
        model.save(args.output_dir / f"{family}.keras")
        flat = keras.tree.flatten(outputs)
        inputs = case.x if isinstance(case.x, dict) else {"inputs": case.x}
        np.savez(
            args.output_dir / f"{family}.npz",
            **{f"input_{key}": np.asarray(value) for key, value in inputs.items()},
            **{f"output_{index}": np.asarray(value) for index, value in enumerate(flat)},
        )
        print(family, model.count_params())


if __name__ == "__main__":
    main()
