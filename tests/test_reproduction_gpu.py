"""The GPU profile of the reproduction (experiments/reproduction-gpu.yaml, issue #20) on the CPU: its settings, the
stage-1 text it adds, and the whole protocol in its --smoke size."""

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import run_reproduction  # noqa: E402

GPU_CONFIG = str(Path(__file__).resolve().parents[1] / "experiments" / "reproduction-gpu.yaml")
CPU_CONFIG = str(Path(__file__).resolve().parents[1] / "experiments" / "reproduction.yaml")


def test_gpu_profile_runs_every_variant_of_the_issue_at_ten_times_the_cpu_budget(shared_data):
    args = run_reproduction.parse_args(["--config", GPU_CONFIG])
    config = run_reproduction.load_config(args)
    run_reproduction.resolve_folders(args, config)
    cpu = run_reproduction.load_config(run_reproduction.parse_args(["--config", CPU_CONFIG]))
    assert args.results_dir.endswith("experiments/results-gpu") and config["seeds"] == [0, 1]
    variants = {name: config["variants"][name] for name in config["default_variants"]}
    momentum = {name: v.get("xlco_momentum", config["stage2"]["xlco_momentum"]) for name, v in variants.items()}
    assert variants["mlm_tlm"]["objectives"] == "mlm,tlm"
    assert sorted(m for n, m in momentum.items() if n != "mlm_tlm") == [
        "constant,0.999",
        "constant,0.9999",
        "constant,1.0",
    ]
    # Equal budget: no variant changes the run length, batch or learning rate; 10x the CPU profile's updates.
    assert not any({"max_steps", "per_device_train_batch_size", "learning_rate"} & set(v) for v in variants.values())
    assert config["stage2"]["max_steps"] >= 10 * cpu["stage2"]["max_steps"]
    # A stronger stage 1 than the CPU profile's 4 x 256, trained on more text for longer.
    shape = dict(item.split("=") for item in config["stage1"]["config_overrides"].split(","))
    cpu_shape = dict(item.split("=") for item in cpu["stage1"]["config_overrides"].split(","))
    assert int(shape["num_hidden_layers"]) > int(cpu_shape["num_hidden_layers"])
    assert int(shape["hidden_size"]) > int(cpu_shape["hidden_size"])
    stage1_tokens = config["stage1"]["max_steps"] * config["stage1"]["per_device_train_batch_size"]
    assert stage1_tokens > 4 * cpu["stage1"]["max_steps"] * cpu["stage1"]["per_device_train_batch_size"]
    assert config["stage1_tatoeba_train_text"] and config["stage1"]["bf16"] and config["stage2"]["bf16"]


def test_stage1_text_is_the_bitext_train_split_and_never_an_eval_pair(tmp_path, shared_data):
    args = run_reproduction.parse_args(["--config", GPU_CONFIG, "--smoke"])
    config = run_reproduction.load_config(args)
    folder = run_reproduction.stage1_tatoeba_text(config, tmp_path)
    written = sorted(path.name for path in folder.glob("*.txt"))
    assert written == sorted(
        [f"tatoeba-train.{lang}.txt" for lang in config["bitext_languages"]] + ["tatoeba-train.eng.txt"]
    )
    english = []
    for language in config["bitext_languages"]:  # independently: the raw files' rows i % 5 != 0, blank pairs dropped
        source = (shared_data / "tatoeba" / f"tatoeba.{language}-eng.{language}").read_text().splitlines()
        target = (shared_data / "tatoeba" / f"tatoeba.{language}-eng.eng").read_text().splitlines()
        rows = [
            (s.strip(), t.strip()) for i, (s, t) in enumerate(zip(source, target)) if i % 5 and s.strip() and t.strip()
        ]
        assert (folder / f"tatoeba-train.{language}.txt").read_text().splitlines() == [s for s, _ in rows]
        english += [t for _, t in rows]
    assert sorted((folder / "tatoeba-train.eng.txt").read_text().splitlines()) == sorted(english)
    arguments = run_reproduction.pretrain_arguments(config, "stage1", 0, tmp_path / "stage1", tmp_path, tmp_path)
    assert arguments["mono_data"] == [str(shared_data / "mono"), str(folder)]
    for mono_only in config["mono_only_languages"]:
        assert not (folder / f"tatoeba-train.{mono_only}.txt").exists()


@pytest.mark.slow
def test_gpu_profile_smoke_runs_stage1_and_stage2_in_parallel_and_writes_its_tables(tmp_path, shared_data):
    report = run_reproduction.main(
        [
            "--config",
            GPU_CONFIG,
            "--smoke",
            "--skip_xnli",
            "--variants",
            "infoxlm_frozen",
            "--output_dir",
            str(tmp_path),
        ]
    )
    assert [run["run"] for run in report["runs"]] == ["stage1", "infoxlm_frozen"]
    stage1, frozen = report["runs"]
    assert set(stage1["tatoeba_by_layer"]) == {"0"} and report["wall_seconds"] > 0
    assert "xlco_key_drift" in frozen["curves"] or "xlco_positive_minus_queue" in frozen["curves"]
    saved = yaml.safe_load((tmp_path / "infoxlm_frozen-seed0" / "pretrain.yaml").read_text())
    assert saved["bf16"] and saved["max_steps"] == 3
    results = tmp_path / "results"
    assert "Stage-1 retrieval by layer" in (results / "results.md").read_text()
    assert json.loads((results / "results.json").read_text())["wall_seconds"] == report["wall_seconds"]
