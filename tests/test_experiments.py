"""The reproduction recipe (experiments/run_reproduction.py) end to end in its --smoke size, on ../shared/data."""

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import compare_records  # noqa: E402
import run_reproduction  # noqa: E402


@pytest.mark.slow
def test_smoke_reproduction_trains_both_stages_and_writes_tables_and_plots(tmp_path, shared_data):
    report = run_reproduction.main(["--smoke", "--output_dir", str(tmp_path)])

    config = run_reproduction.load_config(run_reproduction.parse_args(["--smoke"]))
    assert list(report["summary"]) == ["stage1", *config["default_variants"]]
    stage1_model = tmp_path / "stage1" / "model"
    for run in report["runs"]:
        run_dir = tmp_path / ("stage1" if run["run"] == "stage1" else f"{run['run']}-seed{run['seed']}")
        assert (run_dir / "model" / "model.safetensors").is_file()
        arguments = yaml.safe_load((run_dir / "pretrain.yaml").read_text())
        if run["run"] == "stage1":
            assert arguments["objectives"] == "mlm" and "model_name_or_path" not in arguments
        else:  # every stage-2 variant continues the one stage-1 checkpoint, with dropout 0
            assert arguments["model_name_or_path"] == str(stage1_model)
            assert "hidden_dropout_prob=0" in arguments["config_overrides"]
            saved = json.loads((run_dir / "model" / "config.json").read_text())
            assert saved["hidden_dropout_prob"] == 0 and saved["attention_probs_dropout_prob"] == 0
            # The Tatoeba eval split and the mono-only languages never enter the bitext.
            assert arguments["parallel_heldout_every"] == 5
            assert not any(lang in f for f in arguments["parallel_data"] for lang in config["mono_only_languages"])
        tatoeba = run["tatoeba"]
        assert set(tatoeba["languages"]) == set(config["retrieval_languages"])
        assert set(tatoeba["groups"]["mono_only"]["languages"]) == {"spa", "bul"}
        assert set(run["xnli"]) == {"en", "sw"}
        objectives = arguments["objectives"].split(",")
        assert {name for name in run["curves"] if name.endswith("_loss")} == {f"{o}_loss" for o in objectives}
        if "xlco" in objectives:  # the live shortcut check is in every XLCO run's logs
            assert {"xlco_in_batch_accuracy", "xlco_positive_minus_queue"} <= set(run["curves"])
    results = tmp_path / "results"
    saved = json.loads((results / "results.json").read_text())
    assert saved["summary"].keys() == report["summary"].keys()
    assert "| infoxlm (seed 0) |" in (results / "results.md").read_text()
    for plot in ("losses.png", "retrieval.png", "shortcut_check.png", "stage1_mlm_loss.png"):
        assert (results / plot).read_bytes().startswith(b"\x89PNG")

    # --collect trains nothing: it tabulates the finished runs asked for and names the others (seed 1 here).
    collected = run_reproduction.main(
        ["--smoke", "--output_dir", str(tmp_path), "--collect", "--variants", "infoxlm", "mlm_tlm"]
        + ["--seeds", "0", "1", "--results_dir", str(tmp_path / "collected")]
    )
    assert list(collected["summary"]) == ["stage1", "infoxlm", "mlm_tlm"]
    assert collected["summary"]["infoxlm"]["xnli_en"] == report["summary"]["infoxlm"]["xnli_en"]


def test_compare_records_finds_every_changed_value_but_not_wall_times_or_output_folders(tmp_path, capsys):
    def write(folder, train_seconds, fra_xlco):
        record = {
            "run": "infoxlm",
            "seed": 1,
            "train_seconds": train_seconds,
            "arguments": {"output_dir": str(tmp_path / folder / "infoxlm-seed1" / "model"), "learning_rate": 2e-4},
            "tatoeba": {"languages": {"fra": {"xlco": {"xx->en": fra_xlco}}}},
            "curves": {"xlco_loss": [[10, 7.9], [20, 7.8]], "tokens_per_second": [[10, float(train_seconds)]]},
        }
        run = tmp_path / folder / "infoxlm-seed1"
        run.mkdir(parents=True)
        (run / "record.json").write_text(json.dumps(record))
        return run

    first, rerun, other = write("a", 60, 0.02), write("b", 95, 0.02), write("c", 61, 0.03)
    for runs, verdict in (((first, rerun), "**Identical.**"), ((first, other), "**1 difference.**")):
        compare_records.main([*map(str, runs), "--output", str(tmp_path / "check.md")])
        written = (tmp_path / "check.md").read_text()
        assert verdict in written and written in capsys.readouterr().out
    assert "tatoeba.languages.fra.xlco.xx->en: 0.02 vs 0.03" in written
