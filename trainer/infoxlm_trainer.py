"""`InfoXLMTrainer`: MLM + TLM + XLCO on the 🤗 Trainer, owning the momentum key encoder and the negative queue."""

import json
import logging
import math
import os
import time
from collections import defaultdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from modeling_infoxlm.hub import model_card

from .key_encoder import KeyEncoder
from .momentum import MomentumSchedule
from .negative_queue import NegativeQueue
from .seeded_collator import SeededCollator
from .training_args import InfoXLMTrainingArguments
from .xlco_loss import xlco_loss

logger = logging.getLogger(__name__)

XLCO_STATE_WEIGHTS = "xlco_state.safetensors"
XLCO_STATE_JSON = "xlco_state.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file and what to do."""


class InfoXLMTrainer(Trainer):
    """
    A `transformers.Trainer` for InfoXLM pretraining. Each batch is `{"mlm": ..., "tlm": ..., "xlco": ...}` (any
    subset, see `InfoXLMDataCollator`); one step runs one forward of the query model over all of them, sums the
    weighted losses and does one backward. After every optimizer update the key encoder moves towards the query
    encoder (`k = m*k + (1-m)*q`) and the step's keys, gathered from every rank, enter the queue. The model itself
    stays a plain `InfoXLMForPreTraining`: `save_model` / `push_to_hub` never see the key encoder or the queue,
    which live in each checkpoint folder as `xlco_state.safetensors` + `xlco_state.json`.
    """

    args: InfoXLMTrainingArguments

    def __init__(self, model=None, args: InfoXLMTrainingArguments = None, data_collator=None, **kwargs):
        if not isinstance(args, InfoXLMTrainingArguments):
            raise TypeError("InfoXLMTrainer needs InfoXLMTrainingArguments.")
        if data_collator is not None:
            data_collator = SeededCollator(data_collator, args.data_seed if args.data_seed is not None else args.seed)
        super().__init__(model=model, args=args, data_collator=data_collator, **kwargs)
        # compute_loss returns a per-batch mean; the Trainer must scale it for gradient accumulation.
        self.model_accepts_loss_kwargs = False
        self.objectives = args.objective_list
        config = self.model.config
        self.momentum = MomentumSchedule.parse(args.xlco_momentum or f"constant,{config.xlco_momentum}")
        self.key_encoder = self.queue = None
        if "xlco" in self.objectives:
            self.key_encoder = KeyEncoder(self.model)
            generator = torch.Generator().manual_seed(args.seed)
            dim = config.xlco_projection_size if config.xlco_use_projection else config.hidden_size
            self.queue = NegativeQueue(config.xlco_queue_size, dim, generator=generator).to(self.args.device)
        self._pending_keys: list[torch.Tensor] = []
        self._skip_update = False
        self._metrics: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._tokens = torch.zeros((), dtype=torch.long, device=self.args.device)
        self._last_log_time = time.perf_counter()
        self._non_embedding_parameters = self.model.num_parameters(exclude_embeddings=True)
        self.add_callback(_AfterOptimizerStep(self))

    # ---------------------------------------------------------------- the step

    def xlco_active(self, update: int) -> bool:
        """Whether the XLCO loss is part of optimizer update number `update` (1-based)."""
        if self.queue is None or update <= self.args.xlco_enable_step:
            return False
        return self.args.xlco_queue_fill == "masked" or self.queue.is_full

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args = self.args
        mlm, tlm, xlco = inputs.get("mlm"), inputs.get("tlm"), inputs.get("xlco")
        with_xlco = xlco is not None and self.xlco_active(self.state.global_step + 1)
        forward = {}
        if mlm is not None:
            forward.update(
                input_ids=mlm["input_ids"],
                attention_mask=mlm["attention_mask"],
                labels=mlm["labels"],
                masked_tokens=mlm["labels"].ne(-100),
            )
        if tlm is not None:
            forward.update(
                tlm_input_ids=tlm["input_ids"], tlm_attention_mask=tlm["attention_mask"], tlm_labels=tlm["labels"]
            )
        if with_xlco:
            forward.update(xlco_input_ids=xlco["query_input_ids"], xlco_attention_mask=xlco["query_attention_mask"])

        # One forward of the (possibly DDP-wrapped) model: DDP allows one forward per backward.
        outputs = model(**forward)
        losses = []
        if mlm is not None:
            losses.append(args.lambda_mlm * outputs.mlm_loss)
            self._record("mlm_loss", outputs.mlm_loss)
            self._tokens += mlm["attention_mask"].sum()
        if tlm is not None:
            losses.append(args.lambda_tlm * outputs.tlm_loss)
            self._record("tlm_loss", outputs.tlm_loss)
            self._tokens += tlm["attention_mask"].sum()
        if xlco is not None:
            # Same precision as the query pass: accelerate autocasts only the prepared model's forward.
            with self.accelerator.autocast():
                keys = self.key_encoder(xlco["key_input_ids"], xlco["key_attention_mask"])
            self._tokens += xlco["query_attention_mask"].sum() + xlco["key_attention_mask"].sum()
            if with_xlco:
                mask = self.queue.valid_mask() if args.xlco_queue_fill == "masked" else None
                loss, accuracy = xlco_loss(
                    outputs.sentence_vectors,
                    keys,
                    self.queue.keys,
                    self.model.config.xlco_temperature,
                    negatives_mask=mask,
                    normalize=args.xlco_normalize,
                    in_batch_negatives=args.xlco_in_batch_negatives,
                )
                losses.append(args.lambda_xlco * loss)
                self._record("xlco_loss", loss)
                self._record("xlco_accuracy", accuracy)
            # Enqueued after the optimizer update, and only if it happens (see `_AfterOptimizerStep`).
            self._pending_keys.append(keys.float())
        loss = sum(losses)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self._skip_update:  # an earlier micro-batch of this update was not finite: the update is dropped
            return torch.zeros((), device=self.args.device)
        loss = super().training_step(model, inputs, num_items_in_batch)
        finite = torch.isfinite(loss).float()
        if self.accelerator.num_processes > 1:
            finite = self.accelerator.reduce(finite, reduction="min")  # every rank skips together
        if not finite.item():
            self._skip_update = True
            logger.warning(
                f"Non-finite loss at update {self.state.global_step + 1}: skipping this update; weights, key "
                "encoder and queue are left untouched."
            )
        return loss

    def floating_point_ops(self, inputs) -> int:
        """6 · parameters · tokens over every objective's batch (the Trainer's default sees no `input_ids`)."""
        tokens = sum(
            tensor.numel() for batch in inputs.values() for name, tensor in batch.items() if name.endswith("input_ids")
        )
        return 6 * tokens * self._non_embedding_parameters

    def _record(self, name: str, value: torch.Tensor) -> None:
        self._metrics[name].append(value.detach().float())

    # ---------------------------------------------------------------- after each update

    def after_optimizer_step(self) -> None:
        """EMA update of the key encoder and enqueueing of the update's keys; nothing if the update was skipped."""
        update = self.state.global_step + 1
        pending, self._pending_keys = self._pending_keys, []
        if self._skip_update:
            self._skip_update = False
            return
        if self.key_encoder is None:
            return
        if update <= self.args.xlco_enable_step:
            self.key_encoder.copy_from(self.model)  # momentum 0 until XLCO starts
        else:
            self.key_encoder.update(self.model, self.momentum(update))
        if pending:
            self.queue.enqueue(self.accelerator.gather(torch.cat(pending)))

    def drop_gradients_of_skipped_update(self, optimizer) -> None:
        # Parameters without a gradient are left alone by torch optimizers (no step, no moment update).
        if self._skip_update:
            optimizer.zero_grad(set_to_none=True)

    # ---------------------------------------------------------------- queue prefill

    @torch.no_grad()
    def prefill_queue(self) -> None:
        """The reference's fill phase: key-encoder passes over training batches until every queue slot holds a key."""
        per_batch = self.args.per_device_train_batch_size * self.accelerator.num_processes
        batches = math.ceil((self.queue.size - self.queue.filled) / per_batch)
        if batches <= 0:
            return
        collator = self.data_collator
        calls = getattr(collator, "calls", None)
        dataloader = self.get_train_dataloader()
        progress = tqdm(
            total=batches, desc="Filling the XLCO queue", disable=not self.is_local_process_zero(), unit="batch"
        )
        for batch in dataloader:
            xlco = self._prepare_inputs(batch)["xlco"]
            with self.accelerator.autocast():
                keys = self.key_encoder(xlco["key_input_ids"], xlco["key_attention_mask"])
            self.queue.enqueue(self.accelerator.gather(keys.float()))
            progress.update()
            if self.queue.is_full:
                break
        progress.close()
        if calls is not None:
            collator.calls = calls  # the training stream starts where it would have without the prefill
        if not self.queue.is_full:
            raise ValueError(
                f"The training data ran out after {self.queue.filled} keys while filling a queue of "
                f"{self.queue.size}: lower --xlco_queue_size or use --xlco_queue_fill masked."
            )

    # ---------------------------------------------------------------- train / resume

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise CheckpointError(f"--resume_from_checkpoint: no checkpoint-* folder in {self.args.output_dir}.")
        if resume_from_checkpoint:
            # Validate and load before the Trainer touches anything, so a bad checkpoint changes nothing.
            self.load_xlco_state(resume_from_checkpoint)
        elif self.queue is not None and self.args.xlco_queue_fill == "prefill":
            self.prefill_queue()
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        # Called for every checkpoint (not for save_model/push_to_hub), before trainer_state.json marks it complete.
        super()._save_optimizer_and_scheduler(output_dir)
        if self.key_encoder is not None and self.args.should_save:
            self.save_xlco_state(output_dir)

    def save_xlco_state(self, output_dir: str | os.PathLike) -> None:
        """Key encoder, queue, pointer and schedule → `xlco_state.safetensors` + `xlco_state.json` (atomic)."""
        tensors = {f"key_encoder.{name}": p.detach().contiguous() for name, p in self.key_encoder.named_parameters()}
        tensors["queue"] = self.queue.keys.detach().contiguous()
        meta = {
            "queue_pointer": self.queue.pointer,
            "queue_filled": self.queue.filled,
            "queue_size": self.queue.size,
            "xlco_layer": self.key_encoder.xlco_layer,
            "momentum_schedule": str(self.momentum),
            "xlco_enable_step": self.args.xlco_enable_step,
            "global_step": self.state.global_step,
        }
        output_dir = Path(output_dir)
        save_file(tensors, output_dir / f"{XLCO_STATE_WEIGHTS}.tmp", metadata={"format": "pt"})
        (output_dir / f"{XLCO_STATE_JSON}.tmp").write_text(json.dumps(meta, indent=2))
        os.replace(output_dir / f"{XLCO_STATE_WEIGHTS}.tmp", output_dir / XLCO_STATE_WEIGHTS)
        os.replace(output_dir / f"{XLCO_STATE_JSON}.tmp", output_dir / XLCO_STATE_JSON)

    def load_xlco_state(self, checkpoint: str | os.PathLike) -> None:
        """Restores key encoder and queue from a checkpoint folder; raises `CheckpointError` and changes nothing
        (in memory or on disk) if the state is missing, corrupt or does not fit this model."""
        checkpoint = Path(checkpoint)
        if not checkpoint.is_dir():
            raise CheckpointError(f"--resume_from_checkpoint {checkpoint}: no such directory.")
        if self.key_encoder is None:
            return
        weights, meta_path = checkpoint / XLCO_STATE_WEIGHTS, checkpoint / XLCO_STATE_JSON
        for path in (weights, meta_path):
            if not path.is_file():
                raise CheckpointError(
                    f"{path} is missing: {checkpoint} was not saved by InfoXLMTrainer with XLCO on. Resume from a "
                    "checkpoint of an XLCO run, or start a new run without --resume_from_checkpoint."
                )
        try:
            meta = json.loads(meta_path.read_text())
            tensors = load_file(weights, device="cpu")
        except (json.JSONDecodeError, SafetensorError, OSError) as error:
            raise CheckpointError(
                f"{weights} or {meta_path} is corrupt ({error}); resume from another checkpoint."
            ) from error
        expected = {f"key_encoder.{name}": p.shape for name, p in self.key_encoder.named_parameters()}
        expected["queue"] = self.queue.keys.shape
        missing = sorted(set(expected) - set(tensors))
        if missing:
            raise CheckpointError(f"{weights} lacks {missing[:5]}; it does not belong to this model.")
        for name, shape in expected.items():
            if tensors[name].shape != shape:
                raise CheckpointError(
                    f"{weights}: tensor {name} has shape {tuple(tensors[name].shape)} but this model needs "
                    f"{tuple(shape)} (check --xlco_layer, --xlco_queue_size and the model config)."
                )
        for field in ("queue_pointer", "queue_filled"):
            if not isinstance(meta.get(field), int) or not 0 <= meta[field] <= self.queue.size:
                raise CheckpointError(f"{meta_path}: {field}={meta.get(field)!r} is invalid.")
        with torch.no_grad():
            for name, param in self.key_encoder.named_parameters():
                param.copy_(tensors[f"key_encoder.{name}"])
            self.queue.keys.copy_(tensors["queue"])
        self.queue.pointer, self.queue.filled = meta["queue_pointer"] % self.queue.size, meta["queue_filled"]

    # ---------------------------------------------------------------- logging

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:  # a training log: add the per-objective numbers
            for name, values in self._metrics.items():
                logs[name] = round(torch.stack(values).mean().item(), 4)
            now = time.perf_counter()
            logs["tokens_per_second"] = round(self._tokens.item() / max(now - self._last_log_time, 1e-9), 1)
            self._metrics.clear()
            self._tokens.zero_()
            self._last_log_time = now
            if self.queue is not None:
                logs["momentum"] = self.momentum(max(self.state.global_step, 1))
                logs["queue_fill"] = round(self.queue.filled / self.queue.size, 4)
        super().log(logs, start_time)

    # ---------------------------------------------------------------- model card

    def final_metrics(self) -> dict[str, float]:
        """The last logged value of each loss, accuracy and retrieval metric."""
        latest = {}
        for entry in self.state.log_history:
            for name, value in entry.items():
                if name.endswith(("_loss", "_accuracy")) or name.startswith("retrieval_acc"):
                    latest[name] = value
        return latest

    def create_model_card(self, **kwargs) -> None:
        """README.md of `output_dir` (uploaded by `push_to_hub`): objectives, data summary and final metrics."""
        if not self.is_world_process_zero():
            return
        card = model_card(
            self.model,
            objectives=self.objectives,
            base_model=getattr(self, "base_model", None),
            data_summary=getattr(self, "data_summary_markdown", None),
            metrics=self.final_metrics(),
        )
        Path(self.args.output_dir, "README.md").write_text(card, encoding="utf-8")


class _AfterOptimizerStep(TrainerCallback):
    """Connects the trainer's XLCO state to the Trainer loop's optimizer events."""

    def __init__(self, trainer: InfoXLMTrainer):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.trainer.drop_gradients_of_skipped_update(optimizer)

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.trainer.after_optimizer_step()
