"""The reproduction recipe (experiments/run_ablation.py) end to end in its --smoke size, on ../shared/data."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import run_ablation  # noqa: E402


@pytest.mark.slow
def test_smoke_ablation_trains_every_variant_and_writes_tables_and_plots(tmp_path, shared_data):
    report = run_ablation.main(["--smoke", "--output_dir", str(tmp_path)])

    config = run_ablation.load_config(run_ablation.parse_args(["--smoke"]))
    assert list(report["summary"]) == config["default_variants"]
    for run in report["runs"]:
        run_dir = tmp_path / f"{run['variant']}-seed{run['seed']}"
        assert (run_dir / "run.yaml").is_file() and (run_dir / "model.safetensors").is_file()
        assert set(run["tatoeba"]) == set(config["bitext_languages"] + config["mono_only_languages"])
        assert all(
            0.0 <= scores["xx->en"] <= 1.0 and 0.0 <= scores["en->xx"] <= 1.0 for scores in run["tatoeba"].values()
        )
        assert set(run["xnli"]) == {"en", "sw"}
        # Each variant logged exactly the losses of its objectives.
        objectives = config["variants"][run["variant"]]["objectives"].split(",")
        assert set(run["curves"]) - {"retrieval_acc"} == {f"{name}_loss" for name in objectives}
    results = tmp_path / "results"
    saved = json.loads((results / "results.json").read_text())
    assert saved["summary"].keys() == report["summary"].keys()
    assert "| infoxlm |" in (results / "results.md").read_text()
    for plot in ("losses.png", "retrieval.png"):
        assert (results / plot).read_bytes().startswith(b"\x89PNG")
