"""InfoXLMTrainer: one step over three objectives, EMA and queue after updates, NaN skip, checkpoints, exact resume."""

import json
import logging

import pytest
import torch
from helpers import (
    WORKERS,
    StopAfter,
    assert_same,
    run_torchrun,
    set_queue_filled,
    snapshot,
    tiny_infoxlm,
    tiny_trainer,
)
from safetensors.torch import load_file
from transformers import AutoModel, TrainerCallback

from trainer import CheckpointError, checkpoints


def key_encoder(trainer) -> dict[str, torch.Tensor]:
    """The key encoder's tensors, by the query model's names, from the XLCO state."""
    prefix = "key_encoder."
    return {n[len(prefix) :]: t for n, t in trainer.xlco.state_dict().items() if n.startswith(prefix)}


def queue_counters(trainer) -> tuple[int, int]:
    """(keys written so far, next slot) from the XLCO state."""
    state = trainer.xlco.state_dict()
    return int(state["queue_filled"]), int(state["queue_pointer"])


def test_training_logs_every_objective_and_fills_the_queue(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=3)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3
    for name in ("mlm_loss", "tlm_loss", "xlco_loss", "xlco_accuracy", "momentum", "queue_fill", "tokens_per_second"):
        assert all(name in entry for entry in logs), name
    assert logs[0]["momentum"] == 0.9999
    # 3 updates of 4 keys into a queue of 16, written in order from slot 0.
    assert queue_counters(trainer) == (12, 12)
    assert [entry["queue_fill"] for entry in logs] == [0.25, 0.5, 0.75]


def test_shortcut_check_is_logged_and_key_drift_once_per_queue_turnover(tmp_path, tiny_tokenizer):
    # Queue 16, 4 keys per update: one turnover every 4 updates; the drift appears in the logs at updates 4 and 8.
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=8, xlco_momentum="constant,0.5")
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    for name in ("xlco_positive_minus_queue", "xlco_fresh_minus_queue", "xlco_in_batch_accuracy"):
        assert all(name in entry for entry in logs[1:]), name  # update 1 has only random queue slots masked out
    assert [entry["step"] for entry in logs if "xlco_key_drift" in entry] == [4, 8]
    assert all(entry["xlco_key_drift"] > 0 for entry in logs if "xlco_key_drift" in entry)


def test_momentum_zero_makes_keys_follow_queries_and_one_freezes_them(tmp_path, tiny_tokenizer):
    follow = tiny_trainer(tiny_tokenizer, tmp_path / "a", max_steps=2, xlco_momentum="constant,0")
    follow.train()
    query = dict(follow.model.named_parameters(remove_duplicate=False))
    for name, key in key_encoder(follow).items():
        assert torch.equal(key, query[name]), name

    frozen = tiny_trainer(tiny_tokenizer, tmp_path / "b", max_steps=2, xlco_momentum="constant,1")
    initial = {name: p.clone() for name, p in key_encoder(frozen).items()}
    frozen.train()
    query = dict(frozen.model.named_parameters(remove_duplicate=False))
    for name, key in key_encoder(frozen).items():
        assert torch.equal(key, initial[name]) and not torch.equal(key, query[name]), name


def test_prefill_fills_the_queue_before_the_first_update(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=1, xlco_queue_fill="prefill")
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert "xlco_loss" in logs[0]  # the queue was full at step 1
    assert queue_counters(trainer) == (16, 4)  # 16 prefilled, then 4 from the update


def test_prefill_mode_holds_the_loss_until_the_queue_is_full(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=1, xlco_queue_fill="prefill")
    assert not trainer.xlco.is_active(1)
    set_queue_filled(trainer.xlco, 15)
    assert not trainer.xlco.is_active(1)
    set_queue_filled(trainer.xlco, 16)
    assert trainer.xlco.is_active(1)


def test_xlco_enable_step_holds_loss_and_ema_then_syncs(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=3, xlco_enable_step=2, xlco_momentum="constant,1")
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert ["xlco_loss" in entry for entry in logs] == [False, False, True]
    assert queue_counters(trainer)[0] == 12  # keys were enqueued while the loss was held off
    # Momentum 1 after the enable step: the keys stay at the query weights of update 2 (synced with momentum 0).
    query_after_3 = dict(trainer.model.named_parameters(remove_duplicate=False))
    assert any(not torch.equal(k, query_after_3[n]) for n, k in key_encoder(trainer).items())


class Snapshots(TrainerCallback):
    def __init__(self, trainer):
        self.trainer, self.after = trainer, {}

    def on_step_end(self, args, state, control, **kwargs):
        self.after[state.global_step] = snapshot(self.trainer)


def test_non_finite_loss_skips_the_update_and_leaves_xlco_state_alone(tmp_path, tiny_tokenizer, caplog):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=3)
    snapshots = Snapshots(trainer)
    trainer.add_callback(snapshots)
    calls = {"n": 0}

    def poison_second_step(module, inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 3 else output  # MLM pass of update 2

    trainer.model.lm_head.register_forward_hook(poison_second_step)
    with caplog.at_level(logging.WARNING, logger="trainer.infoxlm_trainer"):
        trainer.train()
    assert "Non-finite loss at update 2" in caplog.text
    assert_same(snapshots.after[1], snapshots.after[2], atol=0.0)
    assert queue_counters(trainer)[0] == 8  # updates 1 and 3 only
    changed = max((snapshots.after[3][k] - snapshots.after[2][k]).abs().max().item() for k in snapshots.after[3])
    assert changed > 0 and all(torch.isfinite(v).all() for v in snapshots.after[3].values())


def test_checkpoint_holds_xlco_state_and_exported_model_does_not(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    trainer.train()
    checkpoint = tmp_path / "checkpoint-2"
    state = load_file(checkpoint / "xlco_state.safetensors")
    meta = json.loads((checkpoint / "xlco_state.json").read_text())
    own = trainer.xlco.state_dict()
    assert (
        set(state)
        == set(own)
        == {"queue", "queue_pointer", "queue_filled"} | {f"key_encoder.{n}" for n in key_encoder(trainer)}
    )
    assert all(torch.equal(state[name], own[name]) for name in own)
    assert meta["queue_pointer"] == int(own["queue_pointer"]) == 8 and meta["queue_filled"] == 8

    trainer.save_model(tmp_path / "export")
    exported = load_file(tmp_path / "export" / "model.safetensors")
    assert not any(name.startswith(("key_encoder", "queue")) for name in exported)
    assert not (tmp_path / "export" / "xlco_state.safetensors").exists()
    assert type(AutoModel.from_pretrained(tmp_path / "export")).__name__ == "InfoXLMModel"


def test_exact_resume_matches_uninterrupted_training(tmp_path, tiny_tokenizer):
    straight = tiny_trainer(tiny_tokenizer, tmp_path / "straight", max_steps=6, xlco_queue_fill="prefill")
    straight.train()

    first = tiny_trainer(
        tiny_tokenizer,
        tmp_path / "resumed",
        max_steps=6,
        xlco_queue_fill="prefill",
        save_strategy="steps",
        save_steps=3,
    )
    first.add_callback(StopAfter(3))  # interrupted after 3 of the 6 scheduled updates
    first.train()
    # A fresh process-like trainer (new model init, new queue) restores everything from checkpoint-3.
    resumed = tiny_trainer(
        tiny_tokenizer,
        tmp_path / "resumed",
        max_steps=6,
        xlco_queue_fill="prefill",
        model=tiny_infoxlm(len(tiny_tokenizer), seed=123),
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / "checkpoint-3"))
    assert_same(snapshot(straight), snapshot(resumed), atol=1e-6)


def test_a_resolved_checkpoint_is_taken_as_it_is(tmp_path, tiny_tokenizer, monkeypatch):
    """run_pretrain.py resolves and checks --resume_from_checkpoint once; train() does not do it again."""
    first = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    first.train()
    resume = checkpoints.resolve_resume_checkpoint("true", tmp_path, checkpoints.xlco_state_files(["xlco"]))
    assert resume.path == tmp_path / "checkpoint-2"
    checked = []
    original = checkpoints.incomplete_reason
    monkeypatch.setattr(checkpoints, "incomplete_reason", lambda *a, **k: checked.append(a) or original(*a, **k))
    resumed = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=3)
    resumed.train(resume_from_checkpoint=resume)
    assert checked == [] and resumed.state.global_step == 3
    assert int(resumed.xlco.state_dict()["queue_filled"]) == 12  # 8 restored, 4 from update 3
    # A path or True from Python is resolved and checked by train() itself.
    again = tiny_trainer(tiny_tokenizer, tmp_path / "again", max_steps=3)
    again.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert len(checked) == 1 and again.state.global_step == 3


def test_corrupt_or_mismatched_checkpoint_errors_and_changes_nothing(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=1, save_strategy="steps", save_steps=1)
    trainer.train()
    checkpoint = tmp_path / "checkpoint-1"

    def listing():
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}

    weights = checkpoint / "xlco_state.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])
    before = listing()
    fresh = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=2)
    with pytest.raises(CheckpointError, match="xlco_state.safetensors"):
        fresh.train(resume_from_checkpoint=str(checkpoint))
    assert listing() == before

    weights.write_bytes(original)
    bigger_queue = tiny_infoxlm(len(tiny_tokenizer), xlco_queue_size=32)
    mismatched = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=2, model=bigger_queue)
    before = listing()
    with pytest.raises(CheckpointError, match="queue has shape"):
        mismatched.train(resume_from_checkpoint=str(checkpoint))
    assert listing() == before

    (checkpoint / "xlco_state.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete: it lacks xlco_state.json"):
        tiny_trainer(tiny_tokenizer, tmp_path, max_steps=2).train(resume_from_checkpoint=str(checkpoint))


def test_objectives_can_be_switched_off(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=2, objectives="mlm,tlm")
    assert trainer.xlco is None
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all("tlm_loss" in e and "xlco_loss" not in e for e in logs)
    with pytest.raises(ValueError, match="objectives"):
        tiny_trainer(tiny_tokenizer, tmp_path, objectives="mlm,nsp")


WORKER = WORKERS / "ddp_worker.py"


@pytest.mark.slow
def test_two_processes_stay_identical_and_skip_a_nan_on_one_rank_together(tmp_path):
    """2 ranks (gloo), bf16, 3 updates; rank 1 alone has a NaN loss at update 2 (tests/workers/ddp_worker.py)."""
    result = run_torchrun(WORKER, tmp_path, port=29517)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "Non-finite loss at update 2" in result.stdout + result.stderr
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        if not name.startswith("local_keys"):
            assert torch.equal(rank0[name], rank1[name]), name
    for state in (rank0, rank1):
        after = {
            step: {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(f"after{step}.")}
            for step in (1, 2, 3)
        }
        assert any(k.startswith("exp_avg_sq.") for k in after[1])  # the optimizer moments are compared too
        assert after[1].keys() == after[2].keys() == after[3].keys()
        for name in after[1]:  # update 2 skipped on both ranks: weights, moments, key encoder, queue untouched
            assert torch.equal(after[1][name], after[2][name]), name
        assert all(torch.isfinite(t).all() for t in after[3].values())  # and training went on, finite
        assert any(not torch.equal(after[3][k], after[2][k]) for k in after[3] if k.startswith("query."))
    # Each rank's keys of the last update are in the (shared) queue: the queue holds keys from both ranks.
    queue = rank0["xlco.queue"]
    for local in (rank0["local_keys"], rank1["local_keys"]):
        assert not torch.equal(rank0["local_keys"], rank1["local_keys"])
        for row in local:
            assert (queue == row).all(dim=1).any()
    meta = json.loads((tmp_path / "rank0.json").read_text())
    assert meta["world_size"] == 2 and meta["filled"] == 2 * 4 * 2  # updates 1 and 3, 4 keys per rank each


def scaled_trainer(tokenizer, output_dir, **args):
    """`tiny_trainer` with a real `torch.amp.GradScaler` in its accelerator, as accelerate builds one under --fp16 on
    a GPU (on the CPU it builds none, and --fp16 is refused there): the scaler's skipping runs for real."""
    trainer = tiny_trainer(tokenizer, output_dir, **args)
    trainer.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    return trainer


def test_a_step_the_grad_scaler_skips_leaves_key_encoder_and_queue_untouched(tmp_path, tiny_tokenizer):
    trainer = scaled_trainer(tiny_tokenizer, tmp_path, max_steps=3, max_grad_norm=0.0, xlco_momentum="constant,0.5")
    snapshots = Snapshots(trainer)
    trainer.add_callback(snapshots)
    calls = {"n": 0}

    def overflow_second_update(gradient):  # a finite loss whose gradient overflows, as fp16 gradients do
        calls["n"] += 1
        return gradient * float("inf") if calls["n"] == 2 else gradient

    trainer.model.xlco_proj.weight.register_hook(overflow_second_update)
    trainer.train()
    assert trainer.accelerator.scaler.get_scale() < 2.0**10  # the scaler saw the overflow and backed off
    assert_same(snapshots.after[1], snapshots.after[2], atol=0.0)  # weights, key encoder and queue
    assert queue_counters(trainer)[0] == 8  # updates 1 and 3 only
    assert all(torch.isfinite(v).all() for v in snapshots.after[3].values())
    assert any(not torch.equal(snapshots.after[3][k], snapshots.after[2][k]) for k in snapshots.after[3])


def test_fp16_without_clipping_lets_the_scaler_skip_a_non_finite_loss(tmp_path, tiny_tokenizer):
    # --fp16 --max_grad_norm 0 used to drop every gradient, and GradScaler.step asserted "No inf checks were recorded".
    trainer = scaled_trainer(tiny_tokenizer, tmp_path, max_steps=3, max_grad_norm=0.0)
    snapshots = Snapshots(trainer)
    trainer.add_callback(snapshots)
    calls = {"n": 0}

    def poison_second_update(module, inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 3 else output  # MLM pass of update 2

    trainer.model.lm_head.register_forward_hook(poison_second_update)
    trainer.train()
    assert_same(snapshots.after[1], snapshots.after[2], atol=0.0)
    assert queue_counters(trainer)[0] == 8
    assert all(torch.isfinite(v).all() for v in snapshots.after[3].values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_on_cuda_places_xlco_state_where_the_model_trains_and_skips_with_the_scaler(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=3, use_cpu=False, fp16=True, max_grad_norm=0.0)
    # As with place_model_on_device=False: everything on the CPU until training starts.
    for module in (trainer.model, trainer.xlco):
        module.to("cpu")
    trainer.train()
    assert trainer.accelerator.scaler is not None
    state = trainer.xlco.state_dict()
    assert {t.device.type for t in state.values()} == {"cuda"} and trainer.model.device.type == "cuda"
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float32}
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3


def test_under_bf16_key_encoder_queue_and_xlco_logits_stay_float32(tmp_path, tiny_tokenizer, monkeypatch):
    import trainer.xlco as xlco_module

    seen, original = [], xlco_module.xlco_loss

    def spy(queries, keys, negatives, *args, **kwargs):
        # The logits are queries @ keys / negatives, computed here: float32 inputs and no autocast → float32 matmuls.
        seen.append((queries.dtype, negatives.dtype, torch.is_autocast_enabled("cpu")))
        return original(queries, keys, negatives, *args, **kwargs)

    monkeypatch.setattr(xlco_module, "xlco_loss", spy)
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=2, bf16=True, xlco_momentum="constant,0.5")
    trainer.train()
    assert seen and set(seen) == {(torch.float32, torch.float32, False)}, seen
    state = trainer.xlco.state_dict()
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float32} and "queue" in state
