"""
`--resume_from_checkpoint True`: it takes the newest complete checkpoint, skipping interrupted saves (a staging
folder, a checkpoint without trainer_state.json), also in a two-process run on CPU; an interrupted save leaves no
checkpoint; `--overwrite_output_dir` starts clean.
"""

import json
import re
import shutil
import sys

import pytest
from helpers import REPO, assert_clean_error, listing, pretrain, pretrain_flags, run_command, tiny_trainer
from transformers import TrainerCallback

from trainer import checkpoints
from trainer.checkpoints import latest_complete_checkpoint, resolve_resume_checkpoint

# --------------------------------------------------------------------------------------------------------------------
# Resume-latest, interrupted saves, overwrite


def test_resume_latest_skips_interrupted_saves_and_overwrite_starts_clean(workspace, tmp_path):
    output_dir = tmp_path / "run"
    saving = ["--save_strategy", "steps", "--save_steps", "2"]
    first = pretrain(*pretrain_flags(workspace, output_dir, *saving, "--max_steps", "4"))
    assert first.returncode == 0, first.stderr[-5000:]
    assert sorted(p.name for p in output_dir.iterdir() if "checkpoint" in p.name) == ["checkpoint-2", "checkpoint-4"]
    for name in (
        "trainer_state.json",
        "xlco_state.safetensors",
        "xlco_state.json",
        "optimizer.pt",
        "model.safetensors",
    ):
        assert (output_dir / "checkpoint-4" / name).is_file(), name

    # What interrupted saves leave: a staging folder (killed while writing), and a checkpoint-6 without the
    # trainer_state.json that the Trainer writes last (an interrupted save of another tool or an older version).
    shutil.copytree(output_dir / "checkpoint-4", output_dir / "tmp-checkpoint-8")
    shutil.copytree(output_dir / "checkpoint-4", output_dir / "checkpoint-6")
    (output_dir / "checkpoint-6" / "trainer_state.json").unlink()

    saved = listing(output_dir / "checkpoint-4")
    explicit = pretrain(
        *pretrain_flags(workspace, output_dir, "--resume_from_checkpoint", str(output_dir / "checkpoint-6"))
    )
    message = assert_clean_error(explicit, "checkpoint-6 is incomplete", "trainer_state.json", "checkpoint-4")
    assert "start a new run" not in message

    resumed = pretrain(
        *pretrain_flags(workspace, output_dir, *saving, "--max_steps", "6", "--resume_from_checkpoint", "True")
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    assert re.search(r"Skipping \S*checkpoint-6: it has no trainer_state.json", resumed.stdout), resumed.stdout[-3000:]
    assert re.search(r"Ignoring \S*tmp-checkpoint-8", resumed.stdout)
    assert re.search(r"Resuming from \S*checkpoint-4\b", resumed.stdout)
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert listing(output_dir / "checkpoint-4") == saved  # continued after update 4: not rewritten
    assert (output_dir / "checkpoint-6" / "trainer_state.json").is_file()  # the incomplete one was replaced

    overwritten = pretrain(*pretrain_flags(workspace, output_dir, *saving, "--overwrite_output_dir", "true"))
    assert overwritten.returncode == 0, overwritten.stderr[-5000:]
    assert sorted(p.name for p in output_dir.iterdir() if "checkpoint" in p.name) == ["checkpoint-2"]
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 2


class Interrupt(TrainerCallback):
    """Stands for Ctrl-C arriving while checkpoint-`step` is being written (after its weights, before its state)."""

    def __init__(self, monkeypatch, step):
        self.monkeypatch, self.step = monkeypatch, step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            save_xlco_state = checkpoints.save_xlco_state

            def interrupted(*args, **kwargs):
                save_xlco_state(*args, **kwargs)
                raise KeyboardInterrupt

            self.monkeypatch.setattr(checkpoints, "save_xlco_state", interrupted)


def test_interrupted_save_leaves_no_checkpoint_and_resume_takes_the_previous_one(
    tmp_path, tiny_tokenizer, monkeypatch
):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=6, save_strategy="steps", save_steps=2)
    trainer.add_callback(Interrupt(monkeypatch, 4))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["checkpoint-2"]
    latest, skipped = latest_complete_checkpoint(tmp_path)
    assert (latest.name, skipped) == ("checkpoint-2", [])
    assert resolve_resume_checkpoint("True", tmp_path).path == tmp_path / "checkpoint-2"


# --------------------------------------------------------------------------------------------------------------------
# Multi-process runs on CPU


def test_torchrun_on_cpu_is_one_ddp_run_and_resumes_latest(workspace, tmp_path):
    output_dir = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    arguments = pretrain_flags(
        workspace, output_dir, "--save_strategy", "steps", "--save_steps", "2", "--xlco_queue_size", "64"
    )
    first = run_command([*torchrun, str(REPO / "run_pretrain.py"), *arguments])
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    checkpoint = output_dir / "checkpoint-2"
    # Both ranks' keys of both updates are in the shared queue: 2 updates x 4 examples x 2 processes.
    assert json.loads((checkpoint / "xlco_state.json").read_text())["queue_filled"] == 16
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert "find_unused_parameters" not in first.stderr

    resumed = run_command(
        [*torchrun, str(REPO / "run_pretrain.py"), *arguments, "--max_steps", "3", "--resume_from_checkpoint", "True"]
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 3
