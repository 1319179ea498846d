"""`InfoXLMTrainer`: MLM + TLM + XLCO on the 🤗 Trainer: one loss over the objectives, the XLCO update after each
optimizer step, the stateful data stream, checkpoints that are complete or absent, and the logs."""

import logging
import time
from collections import defaultdict
from pathlib import Path

import torch
from accelerate.data_loader import prepare_data_loader
from torchdata.stateful_dataloader import StatefulDataLoader
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, SaveStrategy, rotate_checkpoints

from modeling_infoxlm.hub import model_card

from . import checkpoints
from .checkpoints import TRAINER_STATE_NAME
from .data import PretrainingDataset, SeededCollator
from .training_args import InfoXLMTrainingArguments
from .xlco import XLCO, MomentumSchedule

logger = logging.getLogger(__name__)


def uses_every_parameter(config, args: InfoXLMTrainingArguments) -> bool:
    """Whether every trainable parameter gets a gradient at every step, so DDP need not search for unused ones."""
    objectives = args.objective_list
    lm_head = "mlm" in objectives or "tlm" in objectives  # also the only users of the layers above xlco_layer
    projection = not config.xlco_use_projection or ("xlco" in objectives and args.xlco_enable_step == 0)
    return lm_head and projection


class InfoXLMTrainer(Trainer):
    """
    A `transformers.Trainer` for InfoXLM pretraining. Each batch is `{"mlm": ..., "tlm": ..., "xlco": ...}` (any
    subset, see `InfoXLMDataCollator`); one step runs one forward of the query model over all of them, sums the
    weighted losses and does one backward. After every optimizer update `self.xlco` (trainer/xlco.py) moves its key
    encoder towards the query encoder (`k = m*k + (1-m)*q`) and enqueues the step's keys, gathered from every rank.
    The model itself stays a plain `InfoXLMForPreTraining`: `save_model` / `push_to_hub` never see the XLCO state,
    which lives in each checkpoint folder as `xlco_state.safetensors` + `xlco_state.json` (trainer/checkpoints.py).

    `xlco_fill_dataset`: XLCO examples for the queue fill (default: the training dataset's own); `base_model` and
    `data_summary` (Markdown) go into the model card.
    """

    args: InfoXLMTrainingArguments

    def __init__(
        self,
        model=None,
        args: InfoXLMTrainingArguments = None,
        data_collator=None,
        xlco_fill_dataset=None,
        base_model: str | None = None,
        data_summary: str | None = None,
        **kwargs,
    ):
        if not isinstance(args, InfoXLMTrainingArguments):
            raise TypeError("InfoXLMTrainer needs InfoXLMTrainingArguments.")
        if args.ddp_find_unused_parameters is None and model is not None:
            # transformers' default (True) costs an extra graph traversal per step, and warns when nothing is unused.
            args.ddp_find_unused_parameters = not uses_every_parameter(model.config, args)
        if data_collator is not None:
            data_collator = SeededCollator(data_collator, args.data_seed if args.data_seed is not None else args.seed)
        super().__init__(model=model, args=args, data_collator=data_collator, **kwargs)
        # "reference": compute_loss divides summed losses by the update's summed sample size (every micro-batch, every
        # rank; `get_batch_samples`), so the Trainer must not divide by the accumulation steps again. "mean": a
        # per-micro-batch mean that the Trainer scales for gradient accumulation.
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = args.loss_normalization == "reference"
        self.objectives = args.objective_list
        self.base_model, self.data_summary = base_model, data_summary
        config = self.model.config
        self.momentum = MomentumSchedule.parse(args.xlco_momentum or f"constant,{config.xlco_momentum}")
        config.xlco_momentum = self.momentum.final  # the saved config states what trained, not its old default
        self.xlco = None
        if "xlco" in self.objectives:
            self.xlco = XLCO(
                self.model,
                self.momentum,
                enable_step=args.xlco_enable_step,
                queue_fill=args.xlco_queue_fill,
                normalize=args.xlco_normalize,
                in_batch_negatives=args.xlco_in_batch_negatives,
                keys_per_update=(
                    args.per_device_train_batch_size
                    * args.gradient_accumulation_steps
                    * self.accelerator.num_processes
                ),
                seed=args.seed,
                # Keys in the query pass's precision: accelerate autocasts only the prepared model's forward.
                autocast=lambda: self.accelerator.autocast(),
            )
        self.xlco_fill_dataset = xlco_fill_dataset
        self._train_loader = None  # the stateful loader of a PretrainingDataset (its position goes in checkpoints)
        self._resumed_loader_state: dict | None = None
        self._skip_update = False
        # Whether a micro-batch of the current update had a non-finite loss on this rank: accumulated on the device
        # and read once per update (`decide_skip`), so the step itself never waits for the device.
        self._non_finite = torch.zeros((), dtype=torch.bool, device=self.args.device)
        self._scale_before_step: float | None = None  # fp16: the GradScaler's scale after the last update
        # name -> [(sum, count)] since the last log; logged as Σsum / Σcount over every rank.
        self._metrics: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = defaultdict(list)
        self._tokens = torch.zeros((), dtype=torch.long, device=self.args.device)
        self._last_log_time = time.perf_counter()
        self._non_embedding_parameters = self.model.num_parameters(exclude_embeddings=True)
        self.add_callback(_AfterOptimizerStep(self))

    # ---------------------------------------------------------------- the step

    @staticmethod
    def sample_size(batch: dict) -> torch.Tensor:
        """The reference's sample size of one micro-batch: masked MLM and TLM tokens plus XLCO sentences.

        The XLCO sentences count whether or not the XLCO loss is on yet (the reference's criterion returns them
        while its queue fills and while λ is 0 before `xlco_enable_step`)."""
        # Sums on the batch's own device plus a Python number: no tensor is copied to the device for this.
        sizes = [batch[objective]["labels"].ne(-100).sum() for objective in ("mlm", "tlm") if objective in batch]
        sentences = batch["xlco"]["query_input_ids"].shape[0] if "xlco" in batch else 0
        if not sizes:
            device = next(t.device for part in batch.values() for t in part.values())
            return torch.full((), sentences, dtype=torch.long, device=device)
        return sum(sizes) + sentences

    def get_batch_samples(self, epoch_iterator, num_batches: int, device: torch.device):
        """The micro-batches of one update and, with `--loss_normalization reference`, their summed sample size
        over every rank: the divisor fairseq applies to the update's summed gradient."""
        batch_samples, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        if self.args.loss_normalization != "reference" or not batch_samples:
            return batch_samples, None
        total = sum(self.sample_size(batch).to(device) for batch in batch_samples)
        if self.accelerator.num_processes > 1:
            total = self.accelerator.reduce(total, reduction="sum")
        return batch_samples, total

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """
        `--loss_normalization reference`: `(λ_xlco·ΣCE_xlco + λ_tlm·ΣCE_tlm + λ_mlm·ΣCE_mlm) / num_items_in_batch`,
        the update's summed sample size, times the number of processes because DDP averages gradients where fairseq
        sums them. `mean`: the sum of the objectives' weighted means (`λ_mlm·mean_mlm + λ_tlm·mean_tlm +
        λ_xlco·mean_xlco`), which the Trainer divides by the accumulation steps.
        """
        args = self.args
        mlm, tlm, xlco = inputs.get("mlm"), inputs.get("tlm"), inputs.get("xlco")
        with_xlco = xlco is not None and self.xlco.is_active(self.state.global_step + 1)
        forward = {}
        if mlm is not None:
            forward.update(input_ids=mlm["input_ids"], attention_mask=mlm["attention_mask"], labels=mlm["labels"])
            # The collator's host-computed positions select the masked tokens without a device-to-host read;
            # a boolean mask (batches from elsewhere) sizes its output from the device's values.
            if "masked_positions" in mlm:
                forward["masked_positions"] = mlm["masked_positions"]
            else:
                forward["masked_tokens"] = mlm["labels"].ne(-100)
        if tlm is not None:
            forward.update(
                tlm_input_ids=tlm["input_ids"],
                tlm_attention_mask=tlm["attention_mask"],
                tlm_labels=tlm["labels"],
                tlm_masked_positions=tlm.get("masked_positions"),
            )
        if with_xlco:
            forward.update(xlco_input_ids=xlco["query_input_ids"], xlco_attention_mask=xlco["query_attention_mask"])

        # One forward of the (possibly DDP-wrapped) model: DDP allows one forward per backward.
        outputs = model(**forward, loss_reduction="sum")
        terms = []  # (weight, summed loss, sample size) per objective
        if mlm is not None:
            terms.append((args.lambda_mlm, outputs.mlm_loss, mlm["labels"].ne(-100).sum()))
            self._record("mlm_loss", *terms[-1][1:])
            self._tokens += mlm["attention_mask"].sum()
        if tlm is not None:
            terms.append((args.lambda_tlm, outputs.tlm_loss, tlm["labels"].ne(-100).sum()))
            self._record("tlm_loss", *terms[-1][1:])
            self._tokens += tlm["attention_mask"].sum()
        if xlco is not None:
            # Remembered, and enqueued after the optimizer update if it happens (see `_AfterOptimizerStep`).
            keys = self.xlco.training_keys(xlco["key_input_ids"], xlco["key_attention_mask"])
            self._tokens += xlco["query_attention_mask"].sum() + xlco["key_attention_mask"].sum()
            if with_xlco:
                loss, accuracy, statistics = self.xlco.loss(outputs.sentence_vectors, keys)
                # A fill kernel, not a copy of a host number to the device.
                sentences = torch.full((), keys.shape[0], device=loss.device)
                terms.append((args.lambda_xlco, loss, sentences))
                self._record("xlco_loss", loss, sentences)
                self._record("xlco_accuracy", accuracy * sentences, sentences)
                for name, value in statistics.items():
                    self._record(name, value, torch.ones_like(sentences))

        if args.loss_normalization == "reference":
            if num_items_in_batch is None:  # outside the training loop (e.g. evaluate): this batch alone
                num_items_in_batch = self.sample_size(inputs)
            total = sum(weight * summed for weight, summed, _ in terms)
            loss = total / num_items_in_batch.clamp(min=1) * self.accelerator.num_processes
        else:
            loss = sum(weight * summed / size.clamp(min=1) for weight, summed, size in terms)
        if self.accelerator.scaler is not None:
            # fp16: the GradScaler decides whether the update happens, from the gradients. A non-finite loss must
            # make them non-finite, which it need not do by itself (an overflowed sum has finite gradients):
            # times 1 if the loss is finite, NaN (inf - inf, NaN - NaN) if not. No host read.
            loss = loss * (loss.detach() - loss.detach() + 1)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        # Every micro-batch runs forward and backward, even after a non-finite one: under DDP every rank must take
        # part in the gradient all-reduce of the update's last micro-batch. Whether the update happens is decided
        # once, before the optimizer step (`decide_skip`).
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._non_finite |= ~torch.isfinite(loss)
        return loss

    def floating_point_ops(self, inputs) -> int:
        """6 · parameters · tokens over every objective's batch (the Trainer's default sees no `input_ids`)."""
        tokens = sum(
            tensor.numel() for batch in inputs.values() for name, tensor in batch.items() if name.endswith("input_ids")
        )
        return 6 * tokens * self._non_embedding_parameters

    def _record(self, name: str, total: torch.Tensor, count: torch.Tensor) -> None:
        self._metrics[name].append((total.detach().float(), count.detach().float()))

    # ---------------------------------------------------------------- after each update

    def after_optimizer_step(self) -> None:
        """The XLCO update (`XLCO.after_update`: EMA, enqueue, key drift); nothing if the update was skipped."""
        update = self.state.global_step + 1
        skipped = self._skip_update or (self.accelerator.scaler is not None and self._scaler_skipped_step())
        self._skip_update = False
        self._non_finite.zero_()
        if skipped:
            if self.accelerator.scaler is not None:
                logger.info(
                    f"Update {update}: the fp16 GradScaler skipped the optimizer step (non-finite gradients) and "
                    "lowered its scale; key encoder and queue are left untouched."
                )
            if self.xlco is not None:
                self.xlco.discard_pending()
            return
        if self.xlco is None:
            return
        for name, value in self.xlco.after_update(self.model, update, self.accelerator.gather).items():
            self._record(name, value, torch.ones_like(value))

    def _scaler_skipped_step(self) -> bool:
        """Whether the fp16 GradScaler has just skipped the optimizer step. accelerate's
        `optimizer_step_was_skipped` misses it for fused optimizers (the Trainer's default `adamw_torch_fused`): the
        scaler hands them its inf flag and calls their step anyway, which then changes nothing. A skip always lowers
        the scale and nothing else does, so the scale tells; reading it is one host sync per update."""
        scale = self.accelerator.scaler.get_scale()
        skipped = self._scale_before_step is not None and scale < self._scale_before_step
        self._scale_before_step = scale
        return skipped

    def decide_skip(self, optimizer) -> None:
        """Before the optimizer step: skip the update if any micro-batch of any rank had a non-finite loss.

        The flag is reduced with max over the ranks (accelerate's `reduce` knows sum, mean and max) and read once
        per update: the update's only host sync of ours. Skipping drops every gradient: torch optimizers leave
        parameters without one alone (no step, no moment update). Under fp16 the GradScaler decides instead, from
        the gradients (a non-finite loss makes them NaN, see `compute_loss`): it skips the step and lowers its
        scale, and `after_optimizer_step` sees the skip in the scale (`_scaler_skipped_step`)."""
        if self.accelerator.scaler is not None:
            if self._scale_before_step is None:  # first update (of this process): later ones reuse the last read
                self._scale_before_step = self.accelerator.scaler.get_scale()
            return
        non_finite = self._non_finite.to(torch.float32)
        if self.accelerator.num_processes > 1:
            non_finite = self.accelerator.reduce(non_finite, reduction="max")  # every rank skips together
        self._skip_update = bool(non_finite.item())
        if self._skip_update:
            optimizer.zero_grad(set_to_none=True)
            logger.warning(
                f"Non-finite loss at update {self.state.global_step + 1} (on at least one rank): skipping this "
                "update; weights, optimizer state, key encoder and queue are left untouched."
            )

    # ---------------------------------------------------------------- queue prefill

    def queue_fill_dataset(self):
        """XLCO examples for the queue fill, in an order independent of the training stream's: filling from the
        training batches themselves would put the twin key of each of the first K/(B·R) updates' positives in the
        queue as a negative. `xlco_fill_dataset` given to the trainer, else the training dataset's own
        `xlco_fill_dataset()` (`PretrainingDataset` has one: the same data under another seed)."""
        if self.xlco_fill_dataset is not None:
            return self.xlco_fill_dataset
        make = getattr(self.train_dataset, "xlco_fill_dataset", None)
        if make is None:
            raise ValueError(
                f"--xlco_queue_fill prefill needs XLCO examples in an order independent of training: the training "
                f"dataset ({type(self.train_dataset).__name__}) has no xlco_fill_dataset(); pass "
                "InfoXLMTrainer(xlco_fill_dataset=...) or use --xlco_queue_fill masked."
            )
        return make()

    def prefill_queue(self) -> None:
        """The reference's fill phase (`XLCO.prefill`) over K // (B·R) + 100 batches of an independent XLCO pass
        (see `queue_fill_dataset`), before the first update. Leaves the training stream and its collator as they
        were; does nothing if the queue is already full."""
        if self.xlco.fill_fraction >= 1:
            return
        args = self.args
        fill_seed = (args.data_seed if args.data_seed is not None else args.seed) + 1_000_003
        # The training collator's own calls counter (its masking seeds) must not move: a separate SeededCollator.
        collator = SeededCollator(getattr(self.data_collator, "collator", self.data_collator), fill_seed)
        loader = torch.utils.data.DataLoader(
            self.queue_fill_dataset(),
            batch_size=args.per_device_train_batch_size,
            collate_fn=collator,
            num_workers=args.dataloader_num_workers,
        )
        # Each rank reads its own share of the fill stream, as accelerate shards the training stream.
        loader = prepare_data_loader(
            loader,
            device=args.device,
            num_processes=self.accelerator.num_processes,
            process_index=self.accelerator.process_index,
            split_batches=False,
            put_on_device=True,
            dispatch_batches=False,
        )
        batches = XLCO.prefill_batches(
            self.xlco.queue_size, args.per_device_train_batch_size * self.accelerator.num_processes
        )
        self.xlco.prefill(loader, self.accelerator.gather, batches, progress=self.is_local_process_zero())

    # ---------------------------------------------------------------- train / resume

    def train(self, resume_from_checkpoint=None, **kwargs):
        """`resume_from_checkpoint`: a checkpoint folder, or True (or "true", as the command line gives it) for the
        latest complete `checkpoint-N` of `output_dir`, resolved and checked by `checkpoints.resolve_resume_checkpoint`
        (incomplete ones are skipped with a warning naming them), or what that function returned.

        A `PretrainingDataset` resumes at the stream position saved in the checkpoint (validated first), without
        reading or collating the batches before it; `--ignore_data_skip` restarts its stream from the beginning."""
        resume = checkpoints.resolve_resume_checkpoint(
            resume_from_checkpoint, self.args.output_dir, required=checkpoints.xlco_state_files(self.objectives)
        )
        if self.xlco is not None:
            # Where the model trains: the Trainer's device, which accelerate's `prepare` moves the model to
            # (`args.device`; one per process, since several GPUs per process are refused).
            self.xlco.place(self.args.device)
        self._resumed_loader_state = None
        if resume:
            # Validate and load before the Trainer touches anything, so a bad checkpoint changes nothing.
            if self._streams_with_position() and not self.args.ignore_data_skip:
                self._resumed_loader_state = checkpoints.load_stream_position(
                    resume.path, self.accelerator.process_index, self.position_description()
                )
            if self.xlco is not None:
                checkpoints.load_xlco_state(resume.path, self.xlco)
        elif self.xlco is not None and self.args.xlco_queue_fill == "prefill":
            self.prefill_queue()
        return super().train(resume_from_checkpoint=resume, **kwargs)

    # ---------------------------------------------------------------- the data stream and its position

    def _streams_with_position(self) -> bool:
        return isinstance(self.train_dataset, PretrainingDataset)

    def position_description(self) -> dict:
        """What this rank's stream position belongs to (`checkpoints.describe_position`)."""
        return checkpoints.describe_position(
            self.train_dataset,
            self.accelerator.process_index,
            self.accelerator.num_processes,
            self._train_batch_size,
            self.args.dataloader_num_workers,
            getattr(self.data_collator, "seed", None),
        )

    def get_train_dataloader(self):
        """For a `PretrainingDataset`: torchdata's `StatefulDataLoader` over this rank's share of the stream, at the
        resumed position if any. transformers' own loader would resume by re-reading and re-collating every batch
        since step 0; its `accelerator_config.use_stateful_dataloader` neither saves the position in checkpoints
        nor turns that replay off, and accelerate's rank sharding wrapper is not stateful. Other datasets: the
        Trainer's loader."""
        if not self._streams_with_position():
            return super().get_train_dataloader()
        args, workers = self.args, self.args.dataloader_num_workers
        dataset = self.train_dataset.shard_for_rank(
            self.accelerator.process_index, self.accelerator.num_processes, self._train_batch_size
        )
        loader = StatefulDataLoader(
            dataset,
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=workers,
            # Page-locked batches only help copies to a GPU; on a CPU torch warns that no accelerator uses them.
            pin_memory=args.dataloader_pin_memory and args.device.type == "cuda",
            prefetch_factor=args.dataloader_prefetch_factor if workers else None,
            persistent_workers=args.dataloader_persistent_workers if workers else False,
            # Its own generator for the workers' base seed: drawing it from torch's global RNG would shift dropout
            # after a resume, which restores that RNG before the loader's iterator is created.
            generator=torch.Generator().manual_seed(args.seed),
        )
        if self._resumed_loader_state is not None:
            loader.load_state_dict(self._resumed_loader_state)
        self._train_loader = loader
        return loader

    def _init_training_state(self, *args, **kwargs):
        epochs_trained, steps_to_skip = super()._init_training_state(*args, **kwargs)
        if self._resumed_loader_state is not None:
            steps_to_skip = 0  # the loader starts at the saved position: nothing to skip
        return epochs_trained, steps_to_skip

    def _save_checkpoint(self, model, trial) -> None:
        """
        transformers' `Trainer._save_checkpoint` (5.x) with its files written into a staging folder that is renamed
        to `checkpoint-N` once complete (`checkpoints.staged_checkpoint`), plus the XLCO state and the stream
        position. transformers writes `checkpoint-N` in place and has no hook between its last file and the push and
        rotation, so an interrupted save would leave a `checkpoint-N` that resuming picks; pushing and rotation here
        see only the renamed folder.
        """
        args = self.args
        if self.hp_search_backend is None and trial is None:
            self.store_flos()
        run_dir = self._get_output_dir(trial=trial)
        checkpoint = Path(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        with checkpoints.staged_checkpoint(
            checkpoint, args.should_save, self.accelerator.wait_for_everyone
        ) as staging:
            self.save_model(str(staging), _internal_call=True)
            if args.save_strategy in (SaveStrategy.STEPS, SaveStrategy.EPOCH, SaveStrategy.BEST) and (
                self.state.best_global_step
            ):
                best = Path(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.best_global_step}")
                if self.state.best_global_step == self.state.global_step or best.exists():
                    self.state.best_model_checkpoint = str(best)  # the final name, also in trainer_state.json
            if not args.save_only_model:
                self._save_optimizer_and_scheduler(str(staging))
                self._save_scaler(str(staging))
                self._save_rng_state(str(staging))
                if self.xlco is not None and args.should_save:
                    checkpoints.save_xlco_state(staging, self.xlco, self.state.global_step)
                if self._train_loader is not None:  # every rank writes its own position
                    position = self.position_description()
                    rank = self.accelerator.process_index
                    checkpoints.save_stream_position(self._train_loader, position, staging, rank)
            if args.should_save:
                for callback in [*self.callback_handler.callbacks, self.control]:
                    if isinstance(callback, ExportableState):
                        name, callback_state = type(callback).__name__, callback.state()
                        if isinstance(self.state.stateful_callbacks[name], list):
                            self.state.stateful_callbacks[name].append(callback_state)
                        else:
                            self.state.stateful_callbacks[name] = callback_state
                self.state.save_to_json(str(staging / TRAINER_STATE_NAME))
        if args.push_to_hub:
            self._push_from_checkpoint(str(checkpoint))
        if args.should_save:
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )

    # ---------------------------------------------------------------- logging

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:  # a training log: add the per-objective numbers
            # Every rank logs (the Trainer gathers `loss` on all of them), so the metrics can be reduced here: each
            # is Σ sum / Σ count over the logging window and every rank, per token / sentence whatever the mode.
            names = sorted(self._metrics)
            sums = torch.stack([torch.stack([s for s, _ in self._metrics[name]]).sum() for name in names])
            counts = torch.stack([torch.stack([c for _, c in self._metrics[name]]).sum() for name in names])
            reduced = torch.cat([sums, counts, self._tokens.float()[None]])
            if self.accelerator.num_processes > 1:
                reduced = self.accelerator.reduce(reduced, reduction="sum")
            reduced = reduced.tolist()
            for i, name in enumerate(names):
                logs[name] = round(reduced[i] / max(reduced[len(names) + i], 1e-12), 4)
            now = time.perf_counter()
            logs["tokens_per_second"] = round(reduced[-1] / max(now - self._last_log_time, 1e-9), 1)
            self._metrics.clear()
            self._tokens.zero_()
            self._last_log_time = now
            if self.xlco is not None:
                logs["momentum"] = self.momentum(max(self.state.global_step, 1))
                logs["queue_fill"] = round(self.xlco.fill_fraction, 4)
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
            base_model=self.base_model,
            data_summary=self.data_summary,
            metrics=self.final_metrics(),
            momentum_schedule=str(self.momentum),
        )
        Path(self.args.output_dir, "README.md").write_text(card, encoding="utf-8")


class _AfterOptimizerStep(TrainerCallback):
    """Connects the trainer's XLCO update to the Trainer loop's optimizer events."""

    def __init__(self, trainer: InfoXLMTrainer):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.trainer.decide_skip(optimizer)

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.trainer.after_optimizer_step()

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer._resumed_loader_state is not None:
            # The Trainer counts epochs from the batches of this call, which start at 0 when nothing was skipped;
            # an endless stream's epoch is the share of max_steps done (what a straight run logs).
            state.epoch = state.global_step / state.max_steps
