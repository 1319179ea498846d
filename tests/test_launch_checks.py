"""Setups InfoXLMTrainer would not train correctly are refused up front: one line, exit code 2, nothing written."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from trainer import InfoXLMTrainingArguments
from trainer.launch_checks import unsupported_setup

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def single_process(monkeypatch):
    for name in ("WORLD_SIZE", "ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_CPU"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("arguments", "environment", "message"),
    [
        ({"fsdp": "full_shard"}, {}, "FSDP is not supported"),
        ({}, {"ACCELERATE_USE_FSDP": "true"}, "FSDP is not supported"),  # `accelerate launch` with an FSDP config
        ({"deepspeed": "ds_config.json"}, {}, "DeepSpeed is not supported"),
        ({}, {"ACCELERATE_USE_DEEPSPEED": "true"}, "DeepSpeed is not supported"),
        ({"fp16": True, "use_cpu": True}, {}, "--fp16 needs a GPU"),
    ],
)
def test_unsupported_setups_are_refused_by_the_arguments(
    tmp_path, monkeypatch, single_process, arguments, environment, message
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        InfoXLMTrainingArguments(output_dir=str(tmp_path / "out"), **arguments)


def test_several_gpus_in_one_process_are_refused_with_the_launch_command(tmp_path, monkeypatch, single_process):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    with pytest.raises(ValueError, match=r"4 GPUs are visible.*--num_processes 4 .*--nproc_per_node 4"):
        InfoXLMTrainingArguments(output_dir=str(tmp_path / "out"))
    # One process per GPU (torchrun and accelerate launch set WORLD_SIZE), or --use_cpu: no DataParallel, accepted.
    # (The check alone: transformers would go on to set up CUDA devices this machine may not have.)
    monkeypatch.setenv("WORLD_SIZE", "4")
    launched = SimpleNamespace(fsdp=None, deepspeed=None, fp16=False, use_cpu=False)
    assert unsupported_setup(launched) is None
    monkeypatch.delenv("WORLD_SIZE")
    assert InfoXLMTrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True).n_gpu == 0


FAKE_GPUS = """
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 2
"""


def test_run_pretrain_on_several_gpus_without_a_launcher_refuses_in_one_line_and_writes_nothing(tmp_path):
    # A sitecustomize on PYTHONPATH fakes two visible GPUs in the child process.
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(FAKE_GPUS)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "INFOXLM_DEBUG", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(REPO)])
    output_dir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(REPO / "run_pretrain.py"), "--output_dir", str(output_dir), "--max_steps", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_pretrain.py: error: 2 GPUs are visible"), lines
    assert "accelerate launch --num_processes 2 run_pretrain.py" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing written
