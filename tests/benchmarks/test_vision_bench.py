"""Smoke test of benchmarks/bench_vision.py at `--quick` sizes, nothing recorded.

The build step copies keras_hub's ViT and Swin weights into ours and checks equal parameter
counts and features (it raises otherwise), so this also runs that equality at tiny sizes,
shifted windows included.
"""

import sys
from pathlib import Path

try:
    from benchmarks import bench_vision
except ImportError:  # `pytest` (unlike `python -m pytest`) does not put the repo root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_vision


def test_own_options_are_split_from_the_harness_options():
    args, rest = bench_vision.parse_args(["--jit", "--repeats", "2", "--filter", "Swin"])
    assert args.jit
    assert rest == ["--repeats", "2", "--filter", "Swin"]
    args, rest = bench_vision.parse_args(["--quick"])
    assert not args.jit and rest == ["--quick"]


def test_quick_run_pairs_every_variant_with_its_peer(capsys):
    results = bench_vision.main(["--quick", "--no-record", "--repeats", "1", "--warmup", "0"])
    peers = {r.name: r.peer for r in results}
    for peer, ours in (
        ("ViTBackbone", "ViTBackbone"),
        ("SwinTransformerBackbone", "SwinBackbone"),
    ):
        for task in bench_vision.TASKS:
            assert peers[f"keras_seq {ours} {task} graph"] == f"keras_hub {peer} {task} graph"
    assert len(results) == 8
    assert all(
        r.items == bench_vision.QUICK_SIZES["batch"] and r.item_unit == "img" for r in results
    )
    out = capsys.readouterr().out
    assert "| keras_seq SwinBackbone train graph |" in out
    assert "img/s" in out
