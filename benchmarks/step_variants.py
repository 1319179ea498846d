"""The two training steps benchmarks/step_time.py compares on the same batches (gpu_check.py's step_time part too):
`Baseline`, XLMRobertaForMaskedLM under the stock Trainer as run_mlm.py runs it, and `Ours`, InfoXLMForPreTraining
under InfoXLMTrainer with a full XLCO queue (step_time.py's docstring says what each step holds); the Trainer
loop's optimizer update (`optimizer_update`), the same in timed laps (`timed_update`), and real steps timed in turn.
"""

import argparse
import time

import torch
from measurement import Stopwatch, interleaved_seconds
from transformers import Trainer, TrainingArguments, XLMRobertaConfig, XLMRobertaForMaskedLM
from workloads import (
    SHARED,
    config_fields,
    encoder_flops,
    head_flops,
    infoxlm_step_flops,
    mlm_tlm_tokens,
    pretraining_dataset,
)

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer import InfoXLMDataCollator, InfoXLMTrainer, InfoXLMTrainingArguments


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """What defines the step both variants run: data, model shape, XLCO queue, device and precision."""
    parser.add_argument("--tokenizer", default=str(SHARED / "xlmr-tokenizer"))
    parser.add_argument("--mono_data", nargs="+", default=[str(SHARED / "mono")])
    parser.add_argument("--parallel_data", nargs="+", default=[str(SHARED / "tatoeba")])
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=8, help="Examples per objective per step.")
    parser.add_argument("--num_hidden_layers", type=int, default=12)
    parser.add_argument("--hidden_size", type=int, default=768)
    parser.add_argument("--num_attention_heads", type=int, default=None, help="Default: hidden_size / 64.")
    parser.add_argument("--intermediate_size", type=int, default=None, help="Default: 4 x hidden_size.")
    parser.add_argument("--max_position_embeddings", type=int, default=514)
    parser.add_argument("--xlco_layer", type=int, default=None, help="Default: the config's, 2/3 of the depth.")
    parser.add_argument("--queue_size", type=int, default=131072, help="xlco_queue_size of the config.")
    parser.add_argument(
        "--queue_sizes",
        type=int,
        nargs="+",
        default=None,
        help="Instead of baseline vs ours: time ours at each of these queue sizes (the first is the reference).",
    )
    parser.add_argument("--queue_fill", default="random", choices=["random", "prefill"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast through the Trainer (for GPU).")
    parser.add_argument("--learning_rate", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)


def step_arguments(argv: list[str]) -> argparse.Namespace:
    """The step's arguments alone (for a caller that builds the variants itself, such as gpu_check.py)."""
    parser = argparse.ArgumentParser()
    add_step_arguments(parser)
    return parser.parse_args(argv)


def model_fields(args, tokenizer) -> dict:
    """The config fields of both variants' model: the arguments' shapes with the tokenizer's vocabulary."""
    return config_fields(
        tokenizer,
        num_hidden_layers=args.num_hidden_layers,
        hidden_size=args.hidden_size,
        num_attention_heads=args.num_attention_heads,
        intermediate_size=args.intermediate_size,
        max_position_embeddings=args.max_position_embeddings,
    )


def shape_line(args, tokenizer) -> str:
    fields = model_fields(args, tokenizer)
    return (
        f"{fields['num_hidden_layers']} layers, hidden {fields['hidden_size']}, {fields['num_attention_heads']} heads, "
        f"intermediate {fields['intermediate_size']}, vocab {fields['vocab_size']:,}, max_seq_length "
        f"{args.max_seq_length}, batch {args.batch_size} per objective, {args.device} "
        f"{'bf16' if args.bf16 else 'fp32'}, queue {args.queue_sizes or args.queue_size}"
    )


def training_fields(args, output_dir: str) -> dict:
    return dict(
        output_dir=output_dir,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_steps=1_000_000,  # the linear schedule stays far from 0 during the few steps timed
        use_cpu=args.device == "cpu",
        bf16=args.bf16,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=args.seed,
    )


def prepare(trainer: Trainer, share_with: Trainer | None = None) -> torch.nn.Module:
    """What `Trainer._prepare_for_training` does on one device: optimizer, `accelerator.prepare`, scheduler."""
    if share_with is not None:  # same model: reuse its optimizer (and AdamW state) instead of a second copy
        trainer.optimizer, trainer.lr_scheduler = share_with.optimizer, share_with.lr_scheduler
        trainer.model_wrapped = share_with.model_wrapped
        return trainer.model_wrapped
    trainer.create_optimizer()
    model, trainer.optimizer = trainer.accelerator.prepare(trainer.model, trainer.optimizer)
    trainer.create_scheduler(num_training_steps=trainer.args.max_steps, optimizer=trainer.optimizer)
    trainer.model_wrapped = model
    return model


def plain_mlm(part: dict) -> dict:
    """An MLM/TLM batch as run_mlm.py's collator gives it (no `masked_positions`, which only our model reads)."""
    return {name: tensor for name, tensor in part.items() if name != "masked_positions"}


class Baseline:
    """XLMRobertaForMaskedLM under the stock Trainer: MLM and TLM batches as two micro-batches of one update."""

    name = "baseline"

    def __init__(self, args, tokenizer, output_dir: str):
        torch.manual_seed(args.seed)
        self.config = XLMRobertaConfig(**model_fields(args, tokenizer))
        model = XLMRobertaForMaskedLM(self.config)  # SDPA: transformers' default (checked in step_time's `checks`)
        training_args = TrainingArguments(**training_fields(args, output_dir), gradient_accumulation_steps=2)
        self.trainer = Trainer(model=model, args=training_args)
        self.model = prepare(self.trainer)
        self.trainer.current_gradient_accumulation_steps = 2  # set by the Trainer loop per update

    def micro_batches(self, batch: dict) -> list[tuple[dict, object]]:
        # The Trainer loop's own way of fetching an update's micro-batches and counting their labels.
        samples, num_items = self.trainer.get_batch_samples(
            iter([plain_mlm(batch["mlm"]), plain_mlm(batch["tlm"])]), 2, self.trainer.args.device
        )
        return [(sample, num_items) for sample in samples]

    def instrumented(self, batch: dict, watch: Stopwatch) -> None:
        for objective in ("mlm", "tlm"):
            watch.start()
            loss = self.model(**plain_mlm(batch[objective])).loss / 2
            watch.lap(f"{objective} forward")
            self.trainer.accelerator.backward(loss)
            watch.lap(f"{objective} backward")
        timed_update(self.trainer, self.model, watch)

    def flops(self, batch: dict) -> int:
        total = 0
        for objective in ("mlm", "tlm"):
            ids = batch[objective]["input_ids"]
            total += 3 * (
                encoder_flops(self.config, ids, self.config.num_hidden_layers) + head_flops(self.config, ids.numel())
            )
        return total

    def tokens(self, batch: dict) -> int:
        return mlm_tlm_tokens(batch)


class Ours:
    """InfoXLMForPreTraining under InfoXLMTrainer: one {mlm, tlm, xlco} batch per update, XLCO queue full (random
    keys written through `XLCO.load_state_dict`, or --queue_fill prefill: the trainer's own `prefill_queue`)."""

    def __init__(self, args, tokenizer, output_dir: str, queue_size: int, share_with: "Ours | None" = None):
        self.name = f"ours, queue {queue_size:,}" if args.queue_sizes else "ours"
        if share_with is None:
            torch.manual_seed(args.seed)
            config = InfoXLMConfig(**model_fields(args, tokenizer), xlco_layer=args.xlco_layer)
            model = InfoXLMForPreTraining(config)
        else:
            model = share_with.trainer.model
        model.config.xlco_queue_size = queue_size  # read once, by InfoXLMTrainer.__init__
        self.config = model.config
        training_args = InfoXLMTrainingArguments(**training_fields(args, output_dir), objectives="mlm,tlm,xlco")
        dataset = None
        if args.queue_fill == "prefill":
            dataset = pretraining_dataset(
                tokenizer, args.mono_data, args.parallel_data, args.max_seq_length, seed=args.seed + 1
            )
        self.trainer = InfoXLMTrainer(
            model=model, args=training_args, train_dataset=dataset, data_collator=InfoXLMDataCollator(tokenizer)
        )
        self.model = prepare(self.trainer, share_with.trainer if share_with else None)
        self.trainer.current_gradient_accumulation_steps = 1
        xlco = self.trainer.xlco
        xlco.place(self.trainer.args.device)  # what `train()` does first: key encoder and queue on the model's device
        start = time.perf_counter()
        if args.queue_fill == "prefill":
            self.trainer.prefill_queue()
        else:  # random normal keys in every slot, the queue full: what the fill leaves, without its passes
            state = xlco.state_dict()
            queue = state["queue"]
            state.update(
                queue=torch.randn(queue.shape, device=queue.device),
                queue_pointer=torch.tensor(0),
                queue_filled=torch.tensor(xlco.queue_size),
            )
            xlco.load_state_dict(state)
        self.fill_seconds = time.perf_counter() - start
        assert xlco.fill_fraction >= 1 and xlco.is_active(1)

    def micro_batches(self, batch: dict) -> list[tuple[dict, object]]:
        # As the Trainer loop fetches them: one micro-batch and the update's sample size (reference normalisation).
        samples, num_items = self.trainer.get_batch_samples(iter([batch]), 1, self.trainer.args.device)
        return [(sample, num_items) for sample in samples]

    def instrumented(self, batch: dict, watch: Stopwatch) -> None:
        trainer, model = self.trainer, self.model
        xlco = batch["xlco"]
        model.train()
        watch.start()
        for objective, prefix in (("mlm", ""), ("tlm", "tlm_")):  # the model's MLM and TLM inputs
            part = batch[objective]
            fields = ("input_ids", "attention_mask", "labels", "masked_positions")
            out = model(**{prefix + name: part[name] for name in fields})
            watch.lap(f"{objective} forward")
            trainer.accelerator.backward(getattr(out, f"{objective}_loss"))
            watch.lap(f"{objective} backward")
        # Remembered by XLCO for the enqueue after the update, as in the trainer's `compute_loss`.
        keys = trainer.xlco.training_keys(xlco["key_input_ids"], xlco["key_attention_mask"])
        watch.lap("key encoder forward")
        queries = model(xlco_input_ids=xlco["query_input_ids"], xlco_attention_mask=xlco["query_attention_mask"])
        loss, _, _ = trainer.xlco.loss(queries.sentence_vectors, keys)
        watch.lap("xlco query forward + loss")
        trainer.accelerator.backward(loss)
        watch.lap("xlco backward")
        timed_update(trainer, model, watch, xlco=True)

    def flops(self, batch: dict) -> int:
        return infoxlm_step_flops(self.config, batch, self.trainer.xlco.queue_size)

    def tokens(self, batch: dict) -> int:
        xlco = batch["xlco"]
        return mlm_tlm_tokens(batch) + int(xlco["query_attention_mask"].sum() + xlco["key_attention_mask"].sum())


def variant_keys(args) -> list[str]:
    return (
        [f"ours:{size}" for size in args.queue_sizes] if args.queue_sizes else ["baseline", f"ours:{args.queue_size}"]
    )


def build_variants(args, tokenizer, output_dir: str, only: str | None = None) -> list:
    """baseline + ours, or ours at each --queue_sizes (sharing one model and optimizer: only the queue differs)."""
    variants, first_ours = [], None
    for key in variant_keys(args):
        if only is not None and key != only:
            continue
        if key == "baseline":
            variants.append(Baseline(args, tokenizer, output_dir))
        else:
            variant = Ours(args, tokenizer, output_dir, int(key.split(":")[1]), share_with=first_ours)
            first_ours = first_ours or variant
            variants.append(variant)
    return variants


# ------------------------------------------------------------------------------------------------ steps


def clip_gradients(trainer: Trainer, model: torch.nn.Module) -> None:
    """The Trainer's gradient clipping on one process without model parallelism: accelerate's `clip_grad_norm_`
    (what `Trainer._clip_grad_norm` calls there; that method is private)."""
    if trainer.args.max_grad_norm > 0:
        trainer.accelerator.clip_grad_norm_(model.parameters(), trainer.args.max_grad_norm)


def optimizer_update(trainer: Trainer, model: torch.nn.Module) -> None:
    """The Trainer loop's optimizer update (`_run_epoch`, once the last micro-batch is through)."""
    clip_gradients(trainer, model)
    trainer.control = trainer.callback_handler.on_pre_optimizer_step(trainer.args, trainer.state, trainer.control)
    trainer.optimizer.step()
    # InfoXLMTrainer's _AfterOptimizerStep: key-encoder EMA and enqueue of the step's keys.
    trainer.control = trainer.callback_handler.on_optimizer_step(trainer.args, trainer.state, trainer.control)
    trainer.lr_scheduler.step()
    model.zero_grad()
    trainer.state.global_step += 1


def xlco_after_update_in_laps(trainer: InfoXLMTrainer, watch: Stopwatch) -> None:
    """`XLCO.after_update` re-done in two laps, EMA then enqueue of the keys `XLCO.training_keys` remembered (its
    once-per-queue-turnover key drift left out). The only code outside trainer/ that re-does that hook."""
    update = trainer.state.global_step + 1
    trainer.xlco.update_key_encoder(trainer.model, update)
    watch.lap("EMA (key encoder)")
    trainer.xlco.enqueue_pending(trainer.accelerator.gather)
    watch.lap("enqueue")


def timed_update(trainer: Trainer, model: torch.nn.Module, watch: Stopwatch, xlco: bool = False) -> None:
    """`optimizer_update` in laps; with `xlco`, InfoXLMTrainer's after-step hook split into its two parts."""
    watch.start()
    clip_gradients(trainer, model)
    watch.lap("grad clip")
    trainer.optimizer.step()
    watch.lap("AdamW step")
    if xlco:
        xlco_after_update_in_laps(trainer, watch)
    trainer.lr_scheduler.step()
    model.zero_grad()
    trainer.state.global_step += 1
    watch.lap("scheduler + zero_grad")


def real_step(variant, batch: dict) -> list[torch.Tensor]:
    """One optimizer update exactly as the Trainer loop runs it; returns the micro-batches' losses."""
    trainer, losses = variant.trainer, []
    micro_batches = variant.micro_batches(batch)
    for index, (inputs, num_items) in enumerate(micro_batches):
        # As the loop does: gradients are synchronised (and the optimizer allowed to step) on the last one only.
        trainer.accelerator.gradient_state._set_sync_gradients(index == len(micro_batches) - 1)
        losses.append(trainer.training_step(variant.model, inputs, num_items))
    optimizer_update(trainer, variant.model)
    return losses


def time_interleaved(variants: list, batches: list[dict], warmup: int, device: torch.device) -> dict[str, list]:
    """Step i of every variant runs on batch i, in turn (a, b, a, b, ...); returns the timed steps' seconds."""
    losses = []

    def step(variant):
        return lambda batch: losses.extend(real_step(variant, batch))

    def report(index, name, seconds):
        print(f"  step {index + 1}/{len(batches)} {name}: {seconds:.3f} s", flush=True)

    times = interleaved_seconds({v.name: step(v) for v in variants}, batches, device, report)
    # Only now, outside the timed region: a non-finite loss makes InfoXLMTrainer skip EMA and enqueue.
    bad = [float(loss) for loss in losses if not torch.isfinite(loss)]
    if bad:
        raise RuntimeError(f"non-finite training losses {bad}: lower --learning_rate; the timings are not valid.")
    return {name: values[warmup:] for name, values in times.items()}
