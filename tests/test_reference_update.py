"""`--loss_normalization reference` against an independent re-implementation of the fairseq reference update.

The reference (microsoft/unilm infoxlm, `tasks/infoxlm.py: train_step`, `criterions/xlco.py`) forwards and backwards
the XLCO, TLM and MLM batches separately with *summed* losses, adds their sample sizes (XLCO sentences, masked TLM
and MLM tokens) over every micro-batch of the update, divides the summed gradient by that total, steps, moves the key
encoder by EMA and enqueues the keys. `reference_training` below does exactly that with `XLMRobertaForMaskedLM` (full
vocabulary logits, a full key-model copy, a hand-written ring buffer), sharing no code with `InfoXLMTrainer` but the
batches it is fed, which are recorded from the trainer's own collator.
"""

import copy
import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import WORKERS, set_queue_filled, tiny_infoxlm, tiny_trainer, worker_pythonpath
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F
from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

from trainer import InfoXLMDataCollator

LR, MOMENTUM, QUEUE, BATCH = 0.5, 0.9, 16, 4


class RecordingCollator:
    """Our collator, keeping every batch it returns (the trainer wraps it in its seeding)."""

    def __init__(self, tokenizer):
        self.collator, self.batches = InfoXLMDataCollator(tokenizer), []

    def __call__(self, examples):
        batch = self.collator(examples)
        self.batches.append(copy.deepcopy(batch))
        return batch


def xlm_roberta_copy(model) -> tuple[XLMRobertaForMaskedLM, nn.Linear]:
    """The same weights in transformers' own XLM-R (eager attention) and a bias-free projection."""
    fields = {k: v for k, v in model.config.to_dict().items() if not k.startswith("xlco_")}
    for key in ("model_type", "auto_map", "architectures", "transformers_version"):
        fields.pop(key, None)
    config = XLMRobertaConfig(**fields)
    config._attn_implementation = "eager"
    xlmr = XLMRobertaForMaskedLM(config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("xlco_proj.")}
    missing, unexpected = xlmr.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.decoder.weight", "lm_head.decoder.bias"}, (missing, unexpected)
    projection = nn.Linear(config.hidden_size, model.xlco_proj.out_features, bias=False)
    projection.weight.data.copy_(model.xlco_proj.weight.data)
    return xlmr, projection


def sentence_vectors(roberta, projection, input_ids, attention_mask, layer):
    hidden = roberta(input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[layer]
    return projection(hidden[:, 0])


def reference_training(model, queue, update_batches, enqueue_per_micro_batch, tau, layer):
    """`len(update_batches)` reference updates (SGD, lr LR, no clipping); returns query model, key model, queue."""
    xlmr, projection = xlm_roberta_copy(model)
    key_roberta, key_projection = copy.deepcopy(xlmr.roberta), copy.deepcopy(projection)
    key_roberta.requires_grad_(False), key_projection.requires_grad_(False)
    parameters = [*xlmr.parameters(), projection.weight]
    optimizer = torch.optim.SGD(parameters, lr=LR)
    queue, pointer = queue.clone(), 0

    def enqueue(keys):
        nonlocal pointer
        for row in keys:
            queue[pointer] = row
            pointer = (pointer + 1) % len(queue)

    for micro_batches in update_batches:
        optimizer.zero_grad()
        sample_size, pending = 0, []
        for batch in micro_batches:
            xlco = batch["xlco"]
            with torch.no_grad():
                keys = sentence_vectors(
                    key_roberta, key_projection, xlco["key_input_ids"], xlco["key_attention_mask"], layer
                )
            queries = sentence_vectors(
                xlmr.roberta, projection, xlco["query_input_ids"], xlco["query_attention_mask"], layer
            )
            logits = torch.cat([(queries * keys).sum(-1, keepdim=True), queries @ queue.T], dim=1) / tau
            F.cross_entropy(logits, torch.zeros(len(keys), dtype=torch.long), reduction="sum").backward()
            if enqueue_per_micro_batch:
                enqueue(keys)
            else:
                pending.append(keys)
            sample_size += len(keys)
            for objective in ("tlm", "mlm"):
                inputs = batch[objective]
                logits = xlmr(inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
                labels = inputs["labels"].view(-1)
                F.cross_entropy(logits.view(-1, logits.shape[-1]), labels, reduction="sum").backward()
                sample_size += int(labels.ne(-100).sum())
        for p in parameters:
            p.grad /= sample_size
        optimizer.step()
        with torch.no_grad():
            query = dict(xlmr.roberta.named_parameters())
            for name, p in key_roberta.named_parameters():
                p.mul_(MOMENTUM).add_(query[name], alpha=1 - MOMENTUM)
            key_projection.weight.mul_(MOMENTUM).add_(projection.weight, alpha=1 - MOMENTUM)
        for keys in pending:
            enqueue(keys)
    return xlmr, projection, key_roberta, key_projection, queue, pointer


def train_ours(tokenizer, output_dir, updates, accumulation, normalization="reference"):
    model = tiny_infoxlm(
        len(tokenizer), xlco_queue_size=QUEUE, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    initial = copy.deepcopy(model)
    collator = RecordingCollator(tokenizer)
    trainer = tiny_trainer(
        tokenizer,
        output_dir,
        max_steps=updates,
        model=model,
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=accumulation,
        optim="sgd",
        learning_rate=LR,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        xlco_momentum=f"constant,{MOMENTUM}",
        xlco_queue_fill="prefill",
        loss_normalization=normalization,
    )
    trainer.data_collator.collator = collator  # the trainer's seeding wrapper now calls the recording collator
    # A full queue of known random keys, as after the reference's fill: XLCO is on from the first update.
    initial_queue = trainer.xlco.state_dict()["queue"].clone()
    set_queue_filled(trainer.xlco, QUEUE)
    trainer.train()
    batches = collator.batches[: updates * accumulation]
    per_update = [batches[i : i + accumulation] for i in range(0, len(batches), accumulation)]
    return trainer, initial, initial_queue, per_update


def max_differences(trainer, reference) -> dict[str, float]:
    xlmr, projection, key_roberta, key_projection, queue, pointer = reference
    ours = trainer.model.state_dict()
    theirs = {**xlmr.state_dict(), "xlco_proj.weight": projection.weight}
    query = max((ours[name] - theirs[name]).abs().max().item() for name in ours)
    key_theirs = {f"roberta.{n}": p for n, p in key_roberta.named_parameters()}
    key_theirs["xlco_proj.weight"] = key_projection.weight
    state = trainer.xlco.state_dict()
    keys = {n.removeprefix("key_encoder."): t for n, t in state.items() if n.startswith("key_encoder.")}
    key = max((p - key_theirs[n]).abs().max().item() for n, p in keys.items())
    assert int(state["queue_pointer"]) == pointer
    return {"query": query, "key": key, "queue": (state["queue"] - queue).abs().max().item()}


@pytest.mark.parametrize("accumulation", [1, 2])
def test_reference_normalisation_matches_an_independent_reference_update(tmp_path, tiny_tokenizer, accumulation):
    trainer, initial, queue, batches = train_ours(tiny_tokenizer, tmp_path, updates=3, accumulation=accumulation)
    assert len(batches) == 3 and all(len(update) == accumulation for update in batches)
    config = initial.config
    reference = reference_training(initial, queue, batches, False, config.xlco_temperature, config.xlco_layer)
    differences = max_differences(trainer, reference)
    assert max(differences.values()) <= 1e-5, differences
    # The weights did move (lr 0.5): a match is not two unchanged models.
    moved = max((p - q).abs().max().item() for p, q in zip(trainer.model.parameters(), initial.parameters()))
    assert moved > 1e-3


def test_mean_normalisation_is_not_the_reference_update(tmp_path, tiny_tokenizer):
    trainer, initial, queue, batches = train_ours(
        tiny_tokenizer, tmp_path, updates=2, accumulation=1, normalization="mean"
    )
    config = initial.config
    reference = reference_training(initial, queue, batches, False, config.xlco_temperature, config.xlco_layer)
    assert max_differences(trainer, reference)["query"] > 1e-3


def test_enqueue_once_per_update_differs_from_the_reference_only_within_an_update(tmp_path, tiny_tokenizer):
    """The reference enqueues after each XLCO micro-batch, so micro-batch 2 of an update already contrasts with
    micro-batch 1's keys (which evict the oldest negatives); we enqueue once per update. At the end of the update
    the queue holds the same keys in the same slots either way; only micro-batch 2's negatives, hence the weights,
    differ."""
    trainer, initial, queue, batches = train_ours(tiny_tokenizer, tmp_path, updates=1, accumulation=2)
    config = initial.config
    per_micro = reference_training(initial, queue, batches, True, config.xlco_temperature, config.xlco_layer)
    differences = max_differences(trainer, per_micro)
    assert differences["queue"] <= 1e-5, differences  # the same keys in the same slots
    assert differences["query"] > 1e-4, differences
    per_update = reference_training(initial, queue, batches, False, config.xlco_temperature, config.xlco_layer)
    assert max(max_differences(trainer, per_update).values()) <= 1e-5


def test_logged_loss_is_the_optimised_objective_and_objectives_are_per_token_means(tmp_path, tiny_tokenizer):
    trainer, _, _, batches = train_ours(tiny_tokenizer, tmp_path, updates=1, accumulation=2)
    (log,) = [entry for entry in trainer.state.log_history if "loss" in entry]
    masked = {o: sum(int(b[o]["labels"].ne(-100).sum()) for b in batches[0]) for o in ("mlm", "tlm")}
    sentences = sum(len(b["xlco"]["query_input_ids"]) for b in batches[0])
    summed = log["mlm_loss"] * masked["mlm"] + log["tlm_loss"] * masked["tlm"] + log["xlco_loss"] * sentences
    assert log["loss"] == pytest.approx(summed / (masked["mlm"] + masked["tlm"] + sentences), rel=1e-3)


WORKER = WORKERS / "ddp_reference_worker.py"


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": worker_pythonpath()}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--master_port", "29533"]
    for processes in (2, 1):
        result = subprocess.run(
            [*torchrun, "--nproc_per_node", str(processes), str(WORKER), str(tmp_path / f"world{processes}")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    two, one = (load_file(tmp_path / f"world{n}" / "rank0.safetensors") for n in (2, 1))
    meta = json.loads((tmp_path / "world2" / "rank0.json").read_text())
    assert meta["world_size"] == 2 and json.loads((tmp_path / "world1" / "rank0.json").read_text())["world_size"] == 1
    worst = max((two[name] - one[name]).abs().max().item() for name in one if name != "queue")
    assert worst <= 1e-5, worst
    # The same keys enter the queue; the all-gather puts them rank-major ([rank 0's micro-batches, rank 1's]) where
    # one process writes them micro-batch-major. Update u wrote slots 16u..16u+15; the rest still hold the init.
    order = torch.tensor([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15])
    reordered = torch.cat([one["queue"][:32].view(2, 16, -1)[:, order].reshape(32, -1), one["queue"][32:]])
    assert (two["queue"] - reordered).abs().max().item() <= 1e-5
    # Each rank saw half the rows: without the cross-rank sample size and DDP's averaging undone, this would differ.
    assert meta["rows_per_rank"] * 2 == json.loads((tmp_path / "world1" / "rank0.json").read_text())["rows_per_rank"]
