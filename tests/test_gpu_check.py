"""benchmarks/gpu_check.py --smoke: every part of the first GPU run, on the CPU at tiny shapes (CI)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402
import gpu_check_numerics  # noqa: E402


def test_gpu_check_smoke_runs_every_part_and_writes_its_numbers(tmp_path, shared_data, capsys):
    output = tmp_path / "check.json"
    status = gpu_check.main(
        ["--smoke", "--tokenizer", str(shared_data / "xlmr-tokenizer"), "--data_dir", str(shared_data)]
        + ["--output", str(output)]
    )
    printed = capsys.readouterr().out
    report = json.loads(output.read_text())
    parts = report["parts"]
    assert list(parts) == list(gpu_check.PARTS) and report["smoke"] and report["device"] == "cpu"
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(gpu_check.PARTS, "PASS"), printed
    assert status == 0
    for name, part in parts.items():
        assert f"{part['status']}  {name}" in printed
    # The numbers behind the verdicts, computed by the run (not copied): a CPU-vs-CPU parity is exact, bf16 is not.
    parity = parts["parity"]["numbers"]
    assert parity["compared"].startswith("CPU vs CPU") and max(parity["fp32_relative"].values()) == 0
    assert 0 < max(parity["bf16_relative"].values()) <= gpu_check_numerics.BF16_TOLERANCE
    skip = parts["nonfinite_skip"]["numbers"]
    assert all(value == 0 for value in skip["max_change_in_update_2"].values()) and skip["max_change_in_update_3"] > 0
    assert parts["run_pretrain"]["numbers"]["global_step"] == 4
    step = parts["step_time"]["numbers"]["shapes"]["tiny"]
    assert step["ours"]["step_seconds"] > 0 and step["baseline"]["step_seconds"] > 0
    assert parts["compile"]["numbers"]["compiled_graphs_over_the_run"] >= 1


def test_gpu_check_refuses_a_missing_tokenizer_folder_in_one_line(tmp_path, capsys):
    status = gpu_check.main(
        ["--smoke", "--tokenizer", str(tmp_path / "nowhere"), "--output", str(tmp_path / "c.json")]
    )
    error = capsys.readouterr().err
    assert status == 2 and "--tokenizer" in error and str(tmp_path / "nowhere") in error
    assert len(error.strip().splitlines()) == 1 and not (tmp_path / "c.json").exists()
