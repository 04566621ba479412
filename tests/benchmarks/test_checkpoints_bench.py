"""Tests of benchmarks/bench_checkpoints.py at `--quick` sizes, nothing recorded.

The fast tests write the tiny Hugging Face directory, load it with both libraries in this
process (the feature check raises if they differ) and run the phase profile; the slow one
runs the whole `--quick` benchmark, one fresh process per load.
"""

import json
import math
import sys
from pathlib import Path

import pytest

try:
    from benchmarks import bench_checkpoints
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_checkpoints

SIZES = bench_checkpoints.QUICK_SIZES


def test_own_options_are_split_from_the_harness_options():
    args, rest = bench_checkpoints.parse_args(
        ["--skip-profile", "--repeats", "2", "--jobs", "3", "--filter", "from_preset"]
    )
    assert args.skip_profile and args.jobs == 3 and args.checkpoint_dir is None
    assert rest == ["--repeats", "2", "--filter", "from_preset"]


def test_checkpoint_has_hugging_face_names_shapes_and_config(tmp_path):
    from safetensors import safe_open

    nbytes = bench_checkpoints.write_checkpoint(tmp_path, SIZES)
    with safe_open(str(tmp_path / "model.safetensors"), framework="numpy") as f:
        shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    assert shapes == bench_checkpoints.hf_tensor_shapes(SIZES)
    assert nbytes == 4 * sum(math.prod(s) for s in shapes.values())
    assert shapes["vit.encoder.layer.1.intermediate.dense.weight"] == (128, 64)
    assert shapes["vit.embeddings.patch_embeddings.projection.weight"] == (64, 3, 8, 8)
    assert shapes["vit.embeddings.position_embeddings"] == (1, 17, 64)
    assert "vit.pooler.dense.weight" in shapes
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "vit" and config["architectures"] == ["ViTModel"]
    assert config["layer_norm_eps"] == 1e-12 and config["qkv_bias"] is True
    # A second call with the same sizes reuses the files.
    before = (tmp_path / "model.safetensors").stat().st_mtime_ns
    bench_checkpoints.write_checkpoint(tmp_path, SIZES)
    assert (tmp_path / "model.safetensors").stat().st_mtime_ns == before


def test_both_libraries_load_the_directory_and_agree(tmp_path):
    bench_checkpoints.write_checkpoint(tmp_path, SIZES)
    error, default_error = bench_checkpoints.check_outputs(tmp_path, SIZES)
    assert error <= bench_checkpoints.RTOL
    # keras_hub's own load builds layer norms with epsilon 1e-6 instead of the config's 1e-12.
    assert default_error > error


def test_phase_profile_covers_the_load_and_restores_the_library(tmp_path):
    from keras_seq.models.checkpoints.tensors import CheckpointTensors

    read = CheckpointTensors.__dict__["_read"]
    bench_checkpoints.write_checkpoint(tmp_path, SIZES)
    profile = bench_checkpoints.profile_loads(tmp_path, SIZES, rounds=1, warmup=0)
    assert CheckpointTensors.__dict__["_read"] is read
    for implementation in bench_checkpoints.IMPLEMENTATIONS:
        phases = profile[implementation]
        assert phases["read"] > 0 and phases["assign"] > 0 and phases["initializers"] > 0
        parts = sum(phases[name] for name, _ in bench_checkpoints.PHASES)
        assert parts == pytest.approx(phases["total"])
    assert "| trace |" in bench_checkpoints.format_profile(profile)


def test_memory_status_reads_proc_fields(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t 512 kB\n")
    assert bench_checkpoints.memory_status(status) == {
        "VmHWM": 2048 * 1024,
        "VmRSS": 1024 * 1024,
        "RssAnon": 512 * 1024,
    }
    assert {"VmHWM", "VmRSS", "RssAnon"} <= set(bench_checkpoints.memory_status())


def test_schedule_warms_up_then_rotates():
    order = bench_checkpoints.schedule(["a", "b", "c"], repeats=2, warmup=1)
    assert order == [(0, "a"), (0, "b"), (0, "c"), (1, "a"), (1, "b"), (1, "c")] + [
        (2, "b"),
        (2, "c"),
        (2, "a"),
    ]


def test_filter_keeps_the_peers():
    names = [v.name for v in bench_checkpoints.variants(["keras_seq ViTBackbone from_preset"])]
    assert names == ["keras_hub ViTBackbone from_preset", "keras_seq ViTBackbone from_preset"]


@pytest.mark.slow  # over 15 s on 2 cores: four fresh processes import TensorFlow
def test_quick_run_loads_in_fresh_processes(capsys):
    run = bench_checkpoints.main(["--quick", "--no-record"])
    results = {r.name: r for r in run["results"]}
    for task in bench_checkpoints.TASKS:
        ours = results[f"keras_seq ViTBackbone {task}"]
        assert ours.peer == f"keras_hub ViTBackbone {task}"
        assert len(ours.times) == 1
    for runs in run["probes"].values():
        (probe,) = runs
        assert probe["seconds"] > 0 and probe["peak"] > 0 and probe["peak_reset"]
    out = capsys.readouterr().out
    assert "| keras_seq ViTBackbone from_preset |" in out
    assert "peak anonymous MiB" in out
