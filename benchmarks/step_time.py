#!/usr/bin/env python
"""Time of one InfoXLM training step (MLM + TLM + XLCO) against a plain 🤗 MLM step on the same batches.

    python benchmarks/step_time.py                                   # XLM-R base shapes, seq 128, CPU fp32
    python benchmarks/step_time.py --num_hidden_layers 2 --hidden_size 128 --queue_size 4096   # quick check
    python benchmarks/step_time.py --queue_sizes 1024 131072         # ours only, at two XLCO queue sizes
    python benchmarks/step_time.py --ablations                       # what each optimisation buys
    python benchmarks/step_time.py --queue_sizes 131072 --profile    # top operators of one step of ours
    python benchmarks/step_time.py --device cuda --bf16 --max_seq_length 512

Both variants get random weights at the same shapes (default XLM-R base: 12 layers, hidden 768, 12 heads,
intermediate 3072, the real 250,002-token XLM-R vocabulary) and the same batches: `--batch_size` examples per
objective from the shared corpora through build_pretraining_dataset + InfoXLMDataCollator.

- baseline: what run_mlm.py does with XLMRobertaForMaskedLM (SDPA attention): `Trainer.training_step` on the MLM
  batch and on the TLM batch (fed as plain MLM: input_ids / attention_mask / labels, so logits at every position),
  as two micro-batches of one optimizer update.
- ours: `InfoXLMTrainer.training_step` on {mlm, tlm, xlco} (XLCO: one mixup pair per example; query pass to
  xlco_layer, key-encoder forward, contrast against a full queue), then the same optimizer update, whose
  on_optimizer_step callback runs the key encoder's EMA and the enqueue (`after_optimizer_step`).

The optimizer update is the Trainer loop's: clip_grad_norm (max_grad_norm 1), on_pre_optimizer_step, AdamW (the
Trainer's default, adamw_torch_fused), on_optimizer_step, scheduler step, zero_grad. The loop's bookkeeping
(logging, the NaN filter on the loss) is left out for both. Steps alternate between the variants (a, b, a, b, ...)
on the same batches, so a slow spell of the shared machine hits both; the headline is the median over --steps real,
un-instrumented steps after --warmup_steps. Per-component times come from a separate instrumented pass (each part
run on its own between device synchronisations), so they only approximately add up to the real step.

The queue (`xlco_queue_size` of the config, --queue_size) is full while timing: by default it is filled with random
normal keys through `NegativeQueue.enqueue` (speed does not depend on the keys' values, and prefilling 131,072 keys
at base size takes 16,384 key-encoder passes); --queue_fill prefill runs the trainer's real `prefill_queue` instead.

Peak memory is measured in a fresh subprocess per variant (this script with a hidden --memory_probe), so the
variants cannot pollute each other: on CPU the growth of the peak RSS (VmHWM, reset through /proc/self/clear_refs)
from after loading the batches to after --memory_steps real steps, i.e. weights, gradients, AdamW state, key
encoder, queue and the largest activations; on CUDA torch.cuda.max_memory_allocated over the same span.

On a CPU whose cores are shared with other jobs, give --threads no more than the idle cores: every operator is an
OpenMP parallel region that ends only when all its threads have had a core, so with one core busy elsewhere each
call waits for a scheduler slice (milliseconds), and the step's 15-20 thousand operator calls rather than its FLOPs
set the time (see docs/performance.md, where 2 threads on a loaded 2-core machine are 1.6-3x slower than 1).

Host syncs per step (where the host waits for the device) are counted for both variants on an extra, hooked step,
on any device, by `HostSyncCounter` (a TorchDispatchMode: scalar reads, value-sized outputs such as boolean-mask
indexing and nonzero, tensors made from Python data, copies between devices; see docs/performance.md).

Model FLOPs are counted analytically on the executed (padded) shapes: 2 x multiply-adds of every linear layer and
of attention's two batched matmuls (QK^T, AV) forward, x3 with backward; the vocabulary projection only at the
positions where it is computed (every position for the baseline, labelled ones for ours); the key encoder forward
only; XLCO logits against the queue forward + the gradient towards the queries. Achieved FLOP/s is compared with
the measured peak of a large matmul on the same device (and, on GPU, with the card's datasheet peak: MFU).
"""

import argparse
import contextlib
import copy
import gc
import itertools
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import torch
import transformers
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoTokenizer, Trainer, TrainingArguments, XLMRobertaConfig, XLMRobertaForMaskedLM

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer import (
    DataArguments,
    InfoXLMDataCollator,
    InfoXLMTrainer,
    InfoXLMTrainingArguments,
    build_pretraining_dataset,
    xlco_loss,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GIB = 2**30
# Dense bf16 tensor-core peaks from the datasheets (SXM parts), for MFU on GPU; --peak_tflops overrides.
DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def model_inputs(batch: dict) -> dict:
    """The query model's inputs for one {mlm, tlm, xlco} batch (as InfoXLMTrainer.compute_loss builds them)."""
    mlm, tlm, xlco = batch["mlm"], batch["tlm"], batch["xlco"]
    inputs = dict(
        input_ids=mlm["input_ids"],
        attention_mask=mlm["attention_mask"],
        labels=mlm["labels"],
        tlm_input_ids=tlm["input_ids"],
        tlm_attention_mask=tlm["attention_mask"],
        tlm_labels=tlm["labels"],
        tlm_masked_positions=tlm.get("masked_positions"),
        xlco_input_ids=xlco["query_input_ids"],
        xlco_attention_mask=xlco["query_attention_mask"],
    )
    # The collator's host-computed positions, as the trainer passes them (no data-dependent shape on the device).
    if "masked_positions" in mlm:
        inputs["masked_positions"] = mlm["masked_positions"]
    else:
        inputs["masked_tokens"] = mlm["labels"].ne(-100)
    return inputs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--ablations", action="store_true", help="Time each optimisation against its absence.")
    parser.add_argument("--warmup_steps", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per variant (the median is reported).")
    parser.add_argument("--component_repeats", type=int, default=1, help="Instrumented passes per variant.")
    parser.add_argument("--ablation_repeats", type=int, default=3)
    parser.add_argument("--memory_steps", type=int, default=2, help="Real steps run by each memory probe.")
    parser.add_argument("--skip_memory", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Instead of timing: torch.profiler's top operators (by self time) of one real step per variant.",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast through the Trainer (for GPU).")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--learning_rate", type=float, default=1e-5)
    parser.add_argument("--peak_tflops", type=float, default=None, help="Datasheet peak for MFU on GPU.")
    parser.add_argument("--seed", type=int, default=0)
    # Internal: one variant's peak memory, in a fresh process (see the module docstring).
    parser.add_argument("--memory_probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batches_file", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------------ data and models


def collate_batches(args, tokenizer, count: int) -> list[dict]:
    """`count` batches {"mlm", "tlm", "xlco"} of `batch_size` examples each, from the shared corpora."""
    data_args = DataArguments(
        mono_data=args.mono_data,
        parallel_data=args.parallel_data,
        max_seq_length=args.max_seq_length,
        streaming=True,  # nothing to tokenize up front: we need a few dozen examples
    )
    dataset, _ = build_pretraining_dataset(data_args, tokenizer, ["mlm", "tlm", "xlco"], seed=args.seed)
    collator = InfoXLMDataCollator(tokenizer)
    torch.manual_seed(args.seed)
    examples = iter(dataset)
    batches = [collator(list(itertools.islice(examples, args.batch_size))) for _ in range(count)]
    del examples
    gc.collect()  # closes the corpus readers now rather than at interpreter exit
    return batches


def mlm_tlm_tokens(batch: dict) -> int:
    """Real (non-padding) tokens of the MLM and TLM batches: what both variants consume."""
    return sum(int(batch[o]["attention_mask"].sum()) for o in ("mlm", "tlm"))


def config_fields(args, tokenizer) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        num_attention_heads=args.num_attention_heads or max(1, args.hidden_size // 64),
        intermediate_size=args.intermediate_size or 4 * args.hidden_size,
        max_position_embeddings=args.max_position_embeddings,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
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
        self.config = XLMRobertaConfig(**config_fields(args, tokenizer))
        model = XLMRobertaForMaskedLM(self.config)  # SDPA: transformers' default (checked in `checks`)
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

    def instrumented(self, batch: dict, watch: "Stopwatch") -> None:
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
    """InfoXLMForPreTraining under InfoXLMTrainer: one {mlm, tlm, xlco} batch per update, XLCO queue full."""

    def __init__(self, args, tokenizer, output_dir: str, queue_size: int, share_with: "Ours | None" = None):
        self.name = f"ours, queue {queue_size:,}" if args.queue_sizes else "ours"
        if share_with is None:
            torch.manual_seed(args.seed)
            config = InfoXLMConfig(**config_fields(args, tokenizer), xlco_layer=args.xlco_layer)
            model = InfoXLMForPreTraining(config)
        else:
            model = share_with.trainer.model
        model.config.xlco_queue_size = queue_size  # read once, by InfoXLMTrainer.__init__
        self.config = model.config
        training_args = InfoXLMTrainingArguments(**training_fields(args, output_dir), objectives="mlm,tlm,xlco")
        dataset = None
        if args.queue_fill == "prefill":
            data_args = DataArguments(
                mono_data=args.mono_data,
                parallel_data=args.parallel_data,
                max_seq_length=args.max_seq_length,
                streaming=True,
            )
            dataset, _ = build_pretraining_dataset(data_args, tokenizer, ["mlm", "tlm", "xlco"], seed=args.seed + 1)
        self.trainer = InfoXLMTrainer(
            model=model, args=training_args, train_dataset=dataset, data_collator=InfoXLMDataCollator(tokenizer)
        )
        self.model = prepare(self.trainer, share_with.trainer if share_with else None)
        self.trainer.current_gradient_accumulation_steps = 1
        self.trainer.place_xlco_state()  # what `train()` does first: key encoder and queue on the model's device
        queue = self.trainer.queue
        start = time.perf_counter()
        if args.queue_fill == "prefill":
            self.trainer.prefill_queue()
        else:
            queue.enqueue(torch.randn(queue.size, queue.keys.shape[1], device=queue.keys.device))
        self.fill_seconds = time.perf_counter() - start
        assert queue.is_full and self.trainer.xlco_active(1)

    def micro_batches(self, batch: dict) -> list[tuple[dict, object]]:
        # As the Trainer loop fetches them: one micro-batch and the update's sample size (reference normalisation).
        samples, num_items = self.trainer.get_batch_samples(iter([batch]), 1, self.trainer.args.device)
        return [(sample, num_items) for sample in samples]

    def instrumented(self, batch: dict, watch: "Stopwatch") -> None:
        trainer, model = self.trainer, self.model
        mlm, tlm, xlco = batch["mlm"], batch["tlm"], batch["xlco"]
        model.train()
        watch.start()
        out = model(
            input_ids=mlm["input_ids"],
            attention_mask=mlm["attention_mask"],
            labels=mlm["labels"],
            masked_positions=mlm["masked_positions"],
        )
        watch.lap("mlm forward")
        trainer.accelerator.backward(out.mlm_loss)
        watch.lap("mlm backward")
        out = model(
            tlm_input_ids=tlm["input_ids"],
            tlm_attention_mask=tlm["attention_mask"],
            tlm_labels=tlm["labels"],
            tlm_masked_positions=tlm["masked_positions"],
        )
        watch.lap("tlm forward")
        trainer.accelerator.backward(out.tlm_loss)
        watch.lap("tlm backward")
        keys = trainer.key_encoder(xlco["key_input_ids"], xlco["key_attention_mask"])
        watch.lap("key encoder forward")
        queries = model(xlco_input_ids=xlco["query_input_ids"], xlco_attention_mask=xlco["query_attention_mask"])
        loss, _ = xlco_loss(
            queries.sentence_vectors,
            keys,
            trainer.queue.keys,
            self.config.xlco_temperature,
            normalize=trainer.args.xlco_normalize,
            in_batch_negatives=trainer.args.xlco_in_batch_negatives,
        )
        watch.lap("xlco query forward + loss")
        trainer.accelerator.backward(loss)
        watch.lap("xlco backward")
        trainer._pending_keys = [keys.float()]
        timed_update(trainer, model, watch)

    def flops(self, batch: dict) -> int:
        config, layers = self.config, self.config.xlco_layer
        hidden, dim = config.hidden_size, config.xlco_projection_size
        total = 0
        for objective in ("mlm", "tlm"):
            part = batch[objective]
            masked = int(part["labels"].ne(-100).sum())
            total += 3 * (
                encoder_flops(config, part["input_ids"], config.num_hidden_layers) + head_flops(config, masked)
            )
        query, key = batch["xlco"]["query_input_ids"], batch["xlco"]["key_input_ids"]
        total += 3 * (encoder_flops(config, query, layers) + 2 * query.shape[0] * hidden * dim)
        total += encoder_flops(config, key, layers) + 2 * key.shape[0] * hidden * dim
        # Logits against the queue, forward and the gradient towards the queries (the queue has none).
        total += 2 * 2 * query.shape[0] * self.trainer.queue.size * dim
        return total

    def tokens(self, batch: dict) -> int:
        xlco = batch["xlco"]
        return mlm_tlm_tokens(batch) + int(xlco["query_attention_mask"].sum() + xlco["key_attention_mask"].sum())


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


def variant_keys(args) -> list[str]:
    return (
        [f"ours:{size}" for size in args.queue_sizes] if args.queue_sizes else ["baseline", f"ours:{args.queue_size}"]
    )


# ------------------------------------------------------------------------------------------------ steps and timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Accumulates named laps, synchronising the device at each boundary so a lap holds its own kernels."""

    def __init__(self, device: torch.device):
        self.device = device
        self.laps: dict[str, float] = defaultdict(float)
        self.last = 0.0

    def start(self) -> None:
        synchronize(self.device)
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        self.laps[name] += now - self.last
        self.last = now


def optimizer_update(trainer: Trainer, model: torch.nn.Module) -> None:
    """The Trainer loop's optimizer update (`_run_epoch`, once the last micro-batch is through)."""
    if trainer.args.max_grad_norm > 0:
        trainer._clip_grad_norm(model)
    trainer.control = trainer.callback_handler.on_pre_optimizer_step(trainer.args, trainer.state, trainer.control)
    trainer.optimizer.step()
    # InfoXLMTrainer's _AfterOptimizerStep: key-encoder EMA and enqueue of the step's keys.
    trainer.control = trainer.callback_handler.on_optimizer_step(trainer.args, trainer.state, trainer.control)
    trainer.lr_scheduler.step()
    model.zero_grad()
    trainer.state.global_step += 1


def timed_update(trainer: Trainer, model: torch.nn.Module, watch: Stopwatch) -> None:
    """`optimizer_update` in laps; InfoXLMTrainer's after-step hook split into its two parts."""
    watch.start()
    if trainer.args.max_grad_norm > 0:
        trainer._clip_grad_norm(model)
    watch.lap("grad clip")
    trainer.optimizer.step()
    watch.lap("AdamW step")
    if isinstance(trainer, InfoXLMTrainer):
        update = trainer.state.global_step + 1
        trainer.key_encoder.update(trainer.model, trainer.momentum(update))
        watch.lap("EMA (key encoder)")
        pending, trainer._pending_keys = trainer._pending_keys, []
        trainer.queue.enqueue(trainer.accelerator.gather(torch.cat(pending)))
        watch.lap("enqueue")
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
    times = {v.name: [] for v in variants}
    losses = []
    for index, batch in enumerate(batches):
        for variant in variants:
            synchronize(device)
            start = time.perf_counter()
            losses.extend(real_step(variant, batch))
            synchronize(device)
            elapsed = time.perf_counter() - start
            if index >= warmup:
                times[variant.name].append(elapsed)
            print(f"  step {index + 1}/{len(batches)} {variant.name}: {elapsed:.3f} s", flush=True)
    # Only now, outside the timed region: a non-finite loss makes InfoXLMTrainer skip EMA and enqueue.
    bad = [float(loss) for loss in losses if not torch.isfinite(loss)]
    if bad:
        raise RuntimeError(f"non-finite training losses {bad}: lower --learning_rate; the timings are not valid.")
    return times


# ------------------------------------------------------------------------------------------------ FLOPs and peaks


def encoder_flops(config, input_ids: torch.Tensor, layers: int) -> int:
    """Forward FLOPs of `layers` encoder layers on the (padded) batch: linear layers + attention's matmuls."""
    batch, length = input_ids.shape
    hidden, intermediate = config.hidden_size, config.intermediate_size
    linear = 2 * batch * length * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * batch * length * length * hidden  # QK^T and (softmax)V
    return layers * (linear + attention)


def head_flops(config, positions: int) -> int:
    """Forward FLOPs of the MLM head (dense + vocabulary projection) at `positions` rows."""
    return 2 * positions * (config.hidden_size * config.hidden_size + config.hidden_size * config.vocab_size)


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 8) -> float:
    """FLOP/s of the fastest of `repeats` size^3 matmuls: what this device can do at best."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def datasheet_peak(args, device: torch.device) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops * 1e12
    if device.type != "cuda" or not args.bf16:
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in DATASHEET_BF16_TFLOPS.items() if key in name), None)


# ------------------------------------------------------------------------------------------------ memory


def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def memory_probe(args) -> None:
    """Runs in a fresh process: builds one variant, runs --memory_steps real steps, prints its peak memory."""
    device = torch.device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    batches = torch.load(args.batches_file)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        if not reset_peak_rss():  # the peak so far is then this process's start-up, below what follows
            print("(could not reset the peak RSS; measuring against the current RSS)", file=sys.stderr)
        base = current_rss()
    with tempfile.TemporaryDirectory() as output_dir:
        (variant,) = build_variants(args, tokenizer, output_dir, only=args.memory_probe)
        for batch in batches[: args.memory_steps]:
            real_step(variant, batch)
        synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss()
    print("MEMORY_PROBE " + json.dumps({"peak_bytes": peak - base}))


def measure_memory(args, batches: list[dict], device: torch.device) -> dict[str, int]:
    """Peak memory of each variant, each in its own fresh process (before this process builds any model)."""
    peaks = {}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "batches.pt")
        torch.save([move(b, torch.device("cpu")) for b in batches[: args.memory_steps]], path)
        for key in variant_keys(args):
            command = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
            command += ["--memory_probe", key, "--batches_file", path]
            print(f"  memory probe: {key}", flush=True)
            result = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in result.stdout.splitlines() if line.startswith("MEMORY_PROBE ")]
            if result.returncode != 0 or not lines:
                raise RuntimeError(f"memory probe {key} failed:\n{result.stderr[-3000:]}")
            peaks[key] = json.loads(lines[-1].split(" ", 1)[1])["peak_bytes"]
    return peaks


# ------------------------------------------------------------------------------------------------ checks


def _call_site() -> str | None:
    """`file:line` of the innermost frame outside torch: the code that asked for the sync."""
    frame = next(
        (
            f
            for f in reversed(traceback.extract_stack()[:-2])
            if "/torch/" not in f.filename and f.filename != __file__
        ),
        None,
    )
    return None if frame is None else f"{Path(frame.filename).name}:{frame.lineno}"


class HostSyncCounter(TorchDispatchMode):
    """
    Counts, by call site, the operators after which the host has to wait for the device: on a GPU each drains the
    queue of launched kernels, and the GPU then idles while Python launches the next ones. Counted on any device,
    so a CPU run shows where a GPU step would stall (`torch.cuda.set_sync_debug_mode` reports syncs, but only on
    CUDA, and also the harmless ones of CPU tensors):

    - scalar reads: `.item()`, `bool()`, `int()`, `float()` of a tensor (`aten._local_scalar_dense`);
    - operators whose output size depends on the values: `nonzero`, boolean-mask indexing and assignment
      (`x[mask]`, `x[mask] = v`), `masked_select`, `unique`, `repeat_interleave` without `output_size`;
    - tensors made from Python data (`torch.tensor(...)`: `aten.lift_fresh`), a pageable host-to-device copy when
      made for the GPU, and copies between devices (`.to(device)`; visible only where there are two devices).

    `.tolist()` and `.numpy()` do not reach the dispatcher on the CPU: `count_host_syncs` patches them at the
    Python level. Not counted: syncs inside C++ kernels (none in a training step of either variant on CPU) and the
    NCCL collectives' waits (asynchronous on the host).
    """

    VALUE_SHAPED = {
        "aten::nonzero",
        "aten::masked_select",
        "aten::_unique2",
        "aten::unique_dim",
        "aten::unique_consecutive",
        "aten::_unique",
    }

    def __init__(self, counter: Counter):
        super().__init__()
        self.counter = counter

    def _count(self, what: str) -> None:
        site = _call_site()
        if site is not None:
            self.counter[f"{what} at {site}"] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        if name == "aten::_local_scalar_dense":
            self._count("scalar read")
        elif name in self.VALUE_SHAPED:
            self._count(name.split("::")[1])
        elif name == "aten::repeat_interleave" and kwargs.get("output_size") is None and len(args) < 3:
            self._count("repeat_interleave")
        elif name in ("aten::index", "aten::index_put", "aten::index_put_", "aten::_index_put_impl_"):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(i is not None and i.dtype in (torch.bool, torch.uint8) for i in indices):
                self._count("boolean-mask indexing")
        elif name == "aten::lift_fresh":
            self._count("tensor from Python data")
        elif name in ("aten::_to_copy", "aten::copy_"):
            source = args[1] if name == "aten::copy_" else args[0]
            target = args[0].device if name == "aten::copy_" else kwargs.get("device") or source.device
            if isinstance(source, torch.Tensor) and torch.device(target).type != source.device.type:
                self._count(f"copy {source.device.type}->{torch.device(target).type}")
        return func(*args, **kwargs)


@contextlib.contextmanager
def count_host_syncs(counter: Counter):
    """`HostSyncCounter` plus the Python-level reads that bypass the dispatcher on CPU (`.tolist()`, `.numpy()`)."""
    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}

    def wrap(name, original):
        def wrapper(self, *args, **kwargs):
            site = _call_site()
            if site is not None:
                counter[f"{name} at {site}"] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        with HostSyncCounter(counter):
            yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def checks(variant, batch: dict) -> list[str]:
    """One real step of `variant` under hooks: which optimisations were actually on in the timed step."""
    lines, hooks = [], []
    model = variant.trainer.model
    config = model.config
    decoder_rows, layer_calls, lerp_calls = [], Counter(), []
    hooks.append(
        model.lm_head.decoder.register_forward_hook(lambda m, i, o: decoder_rows.append(i[0].shape[:-1].numel()))
    )
    for index, layer in enumerate(model.roberta.encoder.layer, start=1):
        hooks.append(layer.register_forward_hook(lambda m, i, o, index=index: layer_calls.update([index])))
    original_lerp = torch._foreach_lerp_

    def counting_lerp(*a, **k):
        lerp_calls.append(len(a[0]))
        return original_lerp(*a, **k)

    torch._foreach_lerp_ = counting_lerp
    syncs = Counter()
    try:
        with count_host_syncs(syncs):
            real_step(variant, batch)
    finally:
        torch._foreach_lerp_ = original_lerp
        for hook in hooks:
            hook.remove()

    masked = [int(batch[o]["labels"].ne(-100).sum()) for o in ("mlm", "tlm")]
    padded = [batch[o]["labels"].numel() for o in ("mlm", "tlm")]
    lines.append(
        f"vocabulary projection rows per step: {sum(decoder_rows):,} (masked positions {sum(masked):,}, "
        f"all positions {sum(padded):,})"
    )
    lines.append(f"attention implementation: {config._attn_implementation}")
    if isinstance(variant, Ours):
        key_encoder = variant.trainer.key_encoder
        above = [layer_calls[i] for i in range(config.xlco_layer + 1, config.num_hidden_layers + 1)]
        below = [layer_calls[i] for i in range(1, config.xlco_layer + 1)]
        stops = set(below) == {3} and set(above) <= {2}  # MLM + TLM + XLCO query below, MLM + TLM above
        lines.append(
            f"query encoder layer calls per step: layers 1..{config.xlco_layer}: {sorted(set(below))}, "
            f"layers {config.xlco_layer + 1}..{config.num_hidden_layers}: {sorted(set(above))} "
            f"(XLCO query pass stops at xlco_layer: {'yes' if stops else 'NO'})"
        )
        lines.append(
            f"key encoder: {len(key_encoder.roberta.encoder.layer)} layers (xlco_layer {key_encoder.xlco_layer}), "
            f"{sum(p.numel() for p in key_encoder.parameters()):,} parameters vs "
            f"{sum(p.numel() for p in model.parameters()):,} in the query model; attention "
            f"{key_encoder.roberta.config._attn_implementation}"
        )
        lines.append(f"EMA: torch._foreach_lerp_ calls per step: {len(lerp_calls)} (over {sum(lerp_calls)} tensors)")
        lines.append(f"queue: {variant.trainer.queue.size:,} keys, full: {variant.trainer.queue.is_full}")
    sites = ", ".join(f"{site} x{n}" for site, n in sorted(syncs.items())) or "none"
    lines.append(f"host syncs per step: {sum(syncs.values())} ({sites})")
    variant.host_syncs = sum(syncs.values())
    return [f"{variant.name}: {line}" for line in lines]


# ------------------------------------------------------------------------------------------------ ablations


def median_interleaved(runs: dict, batches: list[dict], warmup: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each callable over `batches`, alternating between them."""
    times = {name: [] for name in runs}
    for index, batch in enumerate(batches):
        for name, run in runs.items():
            synchronize(device)
            start = time.perf_counter()
            run(batch)
            synchronize(device)
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run_ablations(args, tokenizer, batches: list[dict], device: torch.device) -> tuple[list[tuple], int, int]:
    """Rows (optimisation, measured part, seconds with, seconds without) on the ours model, and the key encoder's
    bytes truncated and as a full copy."""
    with tempfile.TemporaryDirectory() as output_dir:
        (ours,) = build_variants(args, tokenizer, output_dir, only=f"ours:{args.queue_size}")
    trainer, model, raw = ours.trainer, ours.model, ours.trainer.model
    config, layer = raw.config, raw.config.xlco_layer
    queue, temperature = trainer.queue.keys, config.xlco_temperature
    model.train()
    rows = []

    def masked_logits(masked: bool):
        def run(batch):
            for objective in ("mlm", "tlm"):
                part = batch[objective]
                out = model(
                    input_ids=part["input_ids"],
                    attention_mask=part["attention_mask"],
                    labels=part["labels"],
                    masked_tokens=part["labels"].ne(-100) if masked else None,
                )
                out.mlm_loss.backward()
            model.zero_grad()

        return run

    print("  ablation: masked-only logits", flush=True)
    times = median_interleaved({"with": masked_logits(True), "without": masked_logits(False)}, batches, 1, device)
    rows.append(("masked-only MLM/TLM logits", "MLM + TLM forward + backward", times["with"], times["without"]))

    def xlco_query(truncated: bool):
        def run(batch):
            xlco = batch["xlco"]
            keys = trainer.key_encoder(xlco["key_input_ids"], xlco["key_attention_mask"])
            if truncated:
                vectors = model(
                    xlco_input_ids=xlco["query_input_ids"], xlco_attention_mask=xlco["query_attention_mask"]
                ).sentence_vectors
            else:  # a full forward, reading the <s> state of xlco_layer from the hidden states
                with trainer.accelerator.autocast():
                    hidden = raw.roberta(
                        xlco["query_input_ids"], attention_mask=xlco["query_attention_mask"], output_hidden_states=True
                    ).hidden_states[layer][:, 0]
                    vectors = raw.xlco_proj(hidden)
            loss, _ = xlco_loss(vectors, keys, queue, temperature)
            loss.backward()
            model.zero_grad()

        return run

    print("  ablation: XLCO query pass to xlco_layer", flush=True)
    times = median_interleaved({"with": xlco_query(True), "without": xlco_query(False)}, batches, 1, device)
    rows.append(
        (
            f"XLCO query pass stops at layer {layer}",
            "key forward + query forward + backward",
            times["with"],
            times["without"],
        )
    )

    # A MoCo-style key encoder: a frozen copy of the whole query model, run to the top.
    full = copy.deepcopy(raw).requires_grad_(False).eval()
    full_params = list(full.parameters())

    def key_forward(truncated: bool):
        def run(batch):
            xlco = batch["xlco"]
            if truncated:
                trainer.key_encoder(xlco["key_input_ids"], xlco["key_attention_mask"])
            else:
                with torch.no_grad():
                    hidden = full.roberta(
                        xlco["key_input_ids"], attention_mask=xlco["key_attention_mask"], output_hidden_states=True
                    ).hidden_states[layer][:, 0]
                    full.xlco_proj(hidden)

        return run

    def ema(truncated: bool):
        def run(batch):
            if truncated:
                trainer.key_encoder.update(raw, 0.9999)
            else:
                with torch.no_grad():
                    torch._foreach_lerp_(full_params, [p.detach() for p in raw.parameters()], 1 - 0.9999)

        return run

    print("  ablation: truncated key encoder", flush=True)
    times = median_interleaved({"with": key_forward(True), "without": key_forward(False)}, batches, 1, device)
    rows.append((f"key encoder truncated at layer {layer}", "key-encoder forward", times["with"], times["without"]))
    times = median_interleaved({"with": ema(True), "without": ema(False)}, batches, 1, device)
    rows.append((f"key encoder truncated at layer {layer}", "EMA update", times["with"], times["without"]))
    key_bytes = sum(p.numel() * p.element_size() for p in trainer.key_encoder.parameters())
    full_bytes = sum(p.numel() * p.element_size() for p in full_params)
    full = full_params = None  # frees the copy before the eager model is built
    gc.collect()

    # Same weights, eager attention: what SDPA buys on the whole forward + backward of a step.
    config_eager = copy.deepcopy(config)
    config_eager._attn_implementation = "eager"
    eager = InfoXLMForPreTraining(config_eager).to(device)
    eager.load_state_dict(raw.state_dict())
    eager.train()

    def forward_backward(module):
        def run(batch):
            with trainer.accelerator.autocast():
                out = module(**model_inputs(batch))
            (out.loss + out.sentence_vectors.sum() * 0).backward()
            module.zero_grad()

        return run

    print("  ablation: SDPA attention", flush=True)
    times = median_interleaved(
        {"with": forward_backward(model), "without": forward_backward(eager)}, batches, 1, device
    )
    rows.append(("SDPA attention (vs eager)", "MLM + TLM + XLCO forward + backward", times["with"], times["without"]))
    return rows, key_bytes, full_bytes


def profile_steps(args, tokenizer, batches: list[dict], device: torch.device, rows: int = 15) -> None:
    """One warm-up step, then one real step under torch.profiler, per variant: where the step's time goes."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    with tempfile.TemporaryDirectory() as output_dir:
        variants = build_variants(args, tokenizer, output_dir)
    for variant in variants:
        real_step(variant, batches[0])
        with profile(activities=activities) as profiler:
            real_step(variant, batches[1])
            synchronize(device)
        print(f"\nProfile of one real step: {variant.name} ({shape_line(args, tokenizer)})")
        events = profiler.key_averages()
        print(events.table(sort_by=sort_by, row_limit=rows))
        # Each call is at least one parallel region: what a CPU with a busy core pays for per call, not per FLOP.
        calls = sum(event.count for event in events if event.key.startswith("aten::"))
        print(f"aten operator calls in the step (nested ones included): {calls:,}")


# ------------------------------------------------------------------------------------------------ main


def move(batch: dict, device: torch.device) -> dict:
    return {name: {key: t.to(device) for key, t in part.items()} for name, part in batch.items()}


def machine_line(device: torch.device) -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    line = (
        f"CPU {cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}"
    )
    if device.type == "cuda":
        line += f", GPU {torch.cuda.get_device_name(device)}"
    return line


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def main():
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("transformers", "accelerate", "trainer"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        return memory_probe(args)

    device = torch.device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    if args.ablations:
        count = 1 + args.ablation_repeats
    else:
        count = max(args.warmup_steps + args.steps, args.memory_steps) + 1 + args.component_repeats
    batches = [move(b, device) for b in collate_batches(args, tokenizer, count)]
    print(machine_line(device))

    if args.ablations:
        rows, key_bytes, full_bytes = run_ablations(args, tokenizer, batches, device)
        print(
            f"\nAblations: {shape_line(args, tokenizer)}; median of {args.ablation_repeats} after 1 warm-up, "
            "interleaved"
        )
        print("| optimisation | measured part | with (s) | without (s) | saved (s) | without / with |")
        print("|---|---|---:|---:|---:|---:|")
        for name, part, with_, without in rows:
            print(
                f"| {name} | {part} | {with_:.3f} | {without:.3f} | {without - with_:.3f} | {without / with_:.2f}x |"
            )
        print(
            f"\nkey encoder weights: truncated {key_bytes / 2**20:,.0f} MiB, full copy {full_bytes / 2**20:,.0f} MiB"
        )
        return

    if args.profile:
        return profile_steps(args, tokenizer, batches, device)
    peaks = {} if args.skip_memory else measure_memory(args, batches, device)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    peak_flops = matmul_peak(device, dtype)
    sheet = datasheet_peak(args, device)

    with tempfile.TemporaryDirectory() as output_dir:
        variants = build_variants(args, tokenizer, output_dir)
    ours = [v for v in variants if isinstance(v, Ours)]
    # Checks on a step of their own (hooks and counters would distort a timed one); also a warm-up.
    check_lines = []
    for variant in variants:
        check_lines += checks(variant, batches[-1])

    timed = batches[: args.warmup_steps + args.steps]
    times = time_interleaved(variants, timed, args.warmup_steps, device)
    components = {}
    for variant in variants:
        watch = Stopwatch(device)
        for batch in batches[-1 - args.component_repeats : -1]:
            variant.instrumented(batch, watch)
        components[variant.name] = {name: value / args.component_repeats for name, value in watch.laps.items()}

    # ---- tables
    names = [v.name for v in variants]
    print(f"\nStep time: {shape_line(args, tokenizer)}")
    if ours:
        print(f"queue filled with {args.queue_fill} keys ({', '.join(f'{v.fill_seconds:.1f} s' for v in ours)})")
    print(f"\nPer component (instrumented pass, mean of {args.component_repeats}; seconds)")
    rows = list(dict.fromkeys(name for v in variants for name in components[v.name]))
    print("| component | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in rows:
        print(f"| {row} | " + " | ".join(seconds(components[n].get(row)) for n in names) + " |")
    print("| **sum of components** | " + " | ".join(f"{sum(components[n].values()):.3f}" for n in names) + " |")
    print("| **real step (median)** | " + " | ".join(f"{statistics.median(times[n]):.3f}" for n in names) + " |")

    print(f"\nReal steps: median of {args.steps} after {args.warmup_steps} warm-up, interleaved")
    header = (
        "| variant | step (s) | min–max (s) | tokens/step | tokens/s | MLM+TLM tokens/s | model TFLOP/step "
        "| achieved GFLOP/s | % of matmul peak |"
    )
    if sheet:
        header += " MFU |"
    if peaks:
        header += " peak memory (GiB) |"
    print(header)
    print("|---|" + "---:|" * (header.count("|") - 2))
    summary = {}
    timed_batches = timed[args.warmup_steps :]
    for variant in variants:
        step = statistics.median(times[variant.name])
        total_time = sum(times[variant.name])
        tokens = sum(variant.tokens(b) for b in timed_batches)
        mlm_tlm = sum(mlm_tlm_tokens(b) for b in timed_batches)
        flops = sum(variant.flops(b) for b in timed_batches)
        achieved = flops / total_time
        line = (
            f"| {variant.name} | {step:.3f} | {min(times[variant.name]):.3f}–{max(times[variant.name]):.3f} | "
            f"{tokens / len(timed_batches):,.0f} | {tokens / total_time:,.0f} | {mlm_tlm / total_time:,.0f} | "
            f"{flops / len(timed_batches) / 1e12:.3f} | {achieved / 1e9:,.1f} | {100 * achieved / peak_flops:.1f}% |"
        )
        if sheet:
            line += f" {100 * achieved / sheet:.1f}% |"
        key = "baseline" if isinstance(variant, Baseline) else f"ours:{variant.trainer.queue.size}"
        if peaks:
            line += f" {peaks[key] / GIB:.2f} |"
        print(line)
        summary[key] = (step, peaks.get(key))
    print(f"\nmatmul peak: {peak_flops / 1e9:,.1f} GFLOP/s ({dtype}, 2048^3, best of 8)")

    print("\nTargets")
    if args.queue_sizes and len(args.queue_sizes) == 1:
        print("- (one queue size: nothing to compare)")
    elif args.queue_sizes:
        (first, _), (last, _) = summary[f"ours:{args.queue_sizes[0]}"], summary[f"ours:{args.queue_sizes[-1]}"]
        ratio = last / first
        print(
            f"- step time at queue {args.queue_sizes[-1]:,} / at queue {args.queue_sizes[0]:,}: {ratio:.3f} "
            f"(target <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})"
        )
    else:
        (base_step, base_peak), (our_step, our_peak) = summary["baseline"], summary[f"ours:{args.queue_size}"]
        ratio = our_step / base_step
        print(f"- step time ours / baseline: {ratio:.3f} (target <= 0.60: {'met' if ratio <= 0.60 else 'MISSED'})")
        syncs = {type(v).__name__: v.host_syncs for v in variants}
        print(
            f"- host syncs per step ours / baseline: {syncs['Ours']} / {syncs['Baseline']} (target ours <= baseline: "
            f"{'met' if syncs['Ours'] <= syncs['Baseline'] else 'MISSED'}; see the checks below)"
        )
        if peaks:
            ratio = our_peak / base_peak
            print(
                f"- peak memory ours / baseline: {ratio:.3f} (target <= 1.35: {'met' if ratio <= 1.35 else 'MISSED'})"
            )
    print("\nChecks (one extra, hooked step per variant)")
    for line in check_lines:
        print(f"- {line}")


def shape_line(args, tokenizer) -> str:
    fields = config_fields(args, tokenizer)
    return (
        f"{fields['num_hidden_layers']} layers, hidden {fields['hidden_size']}, {fields['num_attention_heads']} heads, "
        f"intermediate {fields['intermediate_size']}, vocab {fields['vocab_size']:,}, max_seq_length "
        f"{args.max_seq_length}, batch {args.batch_size} per objective, {args.device} "
        f"{'bf16' if args.bf16 else 'fp32'}, queue {args.queue_sizes or args.queue_size}"
    )


if __name__ == "__main__":
    main()
