#!/usr/bin/env python
"""How long the GPU profile of the reproduction should take on one H200, estimated from step costs measured here.

    python experiments/estimate_gpu_time.py                     # experiments/reproduction-gpu.yaml
    python experiments/estimate_gpu_time.py --steps 2 --threads 1

For one step of each kind the profile runs (stage 1: MLM; stage 2: MLM+TLM, and MLM+TLM+XLCO against a full queue),
at the profile's shapes and sequence length, on batches from ../shared/data, it measures on this CPU: its model FLOPs
on batches of the profile's size (counted on the executed shapes, as benchmarks/step_time.py counts them) and its
kernel launches (the leaf `aten::` operators of one real training step in torch.profiler, views, metadata and
allocations left out: each remaining one is at least one CUDA kernel). The launches do not depend on the batch size,
so that step runs on --launch_batch examples per objective, which a CPU does in seconds; its wall time (median of
--steps after one warm-up) is printed too. A small model's GPU step is set by its launches as much as by its FLOPs,
so the GPU time per step is modelled as

    one process alone:  max(launches x LAUNCH_US, FLOPs / (EFFICIENCY x PEAK))      (the host issues kernels)
    GPU busy time:      launches x KERNEL_US + FLOPs / (EFFICIENCY x PEAK)          (what parallel runs share)

and a wave of P parallel runs of S steps takes max(S x alone, P x S x busy). The constants are assumptions to be
replaced by the first GPU run's numbers (benchmarks/gpu_check.py measures the step time and the matmul peak):
PEAK 790 TFLOP/s (the bf16 matmul measured on an H200 here, /work/.library/device/KINDS.md), EFFICIENCY 0.35 at
these small matrices, LAUNCH_US 10 (eager PyTorch's host cost per operator on a server CPU), KERNEL_US 3 (a small
kernel's time on the GPU). Evaluation and process start-up get a fixed allowance (EVAL_SECONDS per wave of runs,
STARTUP_SECONDS per process on the critical path). The CPU's own step time is printed beside it as a sanity check
(it bounds the work; it does not predict the GPU).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "experiments")]

import run_reproduction  # noqa: E402
import step_variants  # noqa: E402
import workloads  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining  # noqa: E402
from trainer import InfoXLMTrainer, InfoXLMTrainingArguments  # noqa: E402

PEAK = 790e12
EFFICIENCY = 0.35
LAUNCH_US = 10.0
KERNEL_US = 3.0
STARTUP_SECONDS = 20.0  # one Python process importing torch + transformers + datasets and loading its model
EVAL_SECONDS = 90.0  # run_retrieval.py + run_xnli.py of one run (both launch-bound, small) incl. their start-ups


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "experiments" / "reproduction-gpu.yaml"))
    parser.add_argument("--tokenizer", default=None, help="Default: the profile's own BPE, trained here if absent.")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--launch_batch", type=int, default=2, help="Examples per objective of the measured step.")
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args(argv)


def overrides(text: str) -> dict:
    return {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in text.split(",") if item)}


# Operators that launch no kernel on a GPU: views, metadata and allocations.
NO_KERNEL = {
    f"aten::{name}"
    for name in (
        "empty empty_strided empty_like view _unsafe_view as_strided t transpose permute expand expand_as reshape "
        "_reshape_alias unsqueeze squeeze slice select detach alias lift_fresh split split_with_sizes chunk unbind "
        "narrow numpy_T result_type size stride is_nonzero resize_ set_ _has_compatible_shallow_copy_type "
        "is_same_size broadcast_tensors unflatten flatten view_as movedim contiguous"
    ).split()
}


def kernel_launches(run) -> int:
    """Leaf aten:: operators of `run()` (those that call no other aten:: operator) that are not views, metadata or
    allocations: about the kernels a GPU step launches (a contiguous() that copies is missed; few are)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run()
    events = [event for event in profiler.events() if event.name.startswith("aten::")]
    return sum(
        1
        for event in events
        if event.name not in NO_KERNEL and not any(c.name.startswith("aten::") for c in event.cpu_children)
    )


def measure(kind: str, section: dict, objectives: list[str], tokenizer, config_yaml: dict, args) -> dict:
    shapes = overrides(section["config_overrides"])
    seq, size = section["max_seq_length"], section["per_device_train_batch_size"]
    queue = section.get("xlco_queue_size", 0)
    shared = (REPO / config_yaml["shared_data"]).resolve()
    # FLOPs on batches of the profile's size; the step (its launches do not depend on the batch size) runs on
    # --launch_batch examples, so that a CPU measures it in seconds.
    batches = workloads.data_dir_batches(tokenizer, shared, seq, size, args.steps)
    batches = [{name: batch[name] for name in objectives} for batch in batches]
    small = workloads.data_dir_batches(tokenizer, shared, seq, args.launch_batch, args.steps + 2)
    small = [{name: batch[name] for name in objectives} for batch in small]
    torch.manual_seed(0)
    model_config = InfoXLMConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        xlco_layer=section.get("xlco_layer", config_yaml["stage1"]["xlco_layer"]),
        xlco_queue_size=queue or 16,
        **shapes,
    )
    model = InfoXLMForPreTraining(model_config)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = InfoXLMTrainer(
            model=model,
            args=InfoXLMTrainingArguments(
                output_dir=output_dir,
                objectives=",".join(objectives),
                per_device_train_batch_size=size,
                learning_rate=1e-4,
                max_steps=1000,
                use_cpu=True,
                report_to=[],
                save_strategy="no",
                disable_tqdm=True,
            ),
        )
    prepared = step_variants.prepare(trainer)
    trainer.current_gradient_accumulation_steps = 1
    if trainer.xlco is not None:  # a full queue of its random initial keys: XLCO from the first step
        state = trainer.xlco.state_dict()
        trainer.xlco.load_state_dict({**state, "queue_filled": torch.tensor(trainer.xlco.queue_size)})

    def step(batch):
        trainer.training_step(prepared, batch)
        step_variants.optimizer_update(trainer, prepared)

    step(small[0])  # warm-up
    launches = kernel_launches(lambda: step(small[1]))
    times = []
    for batch in small[2:]:
        started = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - started)
    flops = statistics.mean(workloads.infoxlm_step_flops(model_config, batch, queue) for batch in batches)
    compute = flops / (EFFICIENCY * PEAK)
    return {
        "kind": kind,
        "cpu_step_seconds": statistics.median(times),
        "flops": flops,
        "launches": launches,
        "gpu_alone_seconds": max(launches * LAUNCH_US * 1e-6, compute),
        "gpu_busy_seconds": launches * KERNEL_US * 1e-6 + compute,
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    config_yaml = yaml.safe_load(Path(args.config).read_text())
    if args.tokenizer is None:
        reproduction_args = run_reproduction.parse_args(["--config", args.config])
        config = run_reproduction.load_config(reproduction_args)
        run_reproduction.resolve_folders(reproduction_args, config)
        tokenizer_path = run_reproduction.prepare_tokenizer(config, Path(reproduction_args.output_dir))
    else:
        tokenizer_path = args.tokenizer
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    stage1, stage2 = config_yaml["stage1"], {**config_yaml["stage2"], **overrides_of_shape(config_yaml)}
    rows = [
        measure("stage 1 (mlm)", stage1, ["mlm"], tokenizer, config_yaml, args),
        measure("stage 2 (mlm,tlm)", stage2, ["mlm", "tlm"], tokenizer, config_yaml, args),
        measure("stage 2 (mlm,tlm,xlco)", stage2, ["mlm", "tlm", "xlco"], tokenizer, config_yaml, args),
    ]
    variants = [config_yaml["variants"][name] for name in config_yaml["default_variants"]]
    runs = len(variants) * len(config_yaml["seeds"])
    parallel = min(int(config_yaml.get("parallel_runs", 1)), runs)
    xlco_runs = sum("xlco" in variant["objectives"] for variant in variants) * len(config_yaml["seeds"])
    stage1_seconds = STARTUP_SECONDS + stage1["max_steps"] * rows[0]["gpu_alone_seconds"]
    steps2 = config_yaml["stage2"]["max_steps"]
    alone = max(rows[1]["gpu_alone_seconds"], rows[2]["gpu_alone_seconds"])
    busy = (runs - xlco_runs) * rows[1]["gpu_busy_seconds"] + xlco_runs * rows[2]["gpu_busy_seconds"]
    waves = -(-runs // parallel)
    stage2_seconds = STARTUP_SECONDS + max(waves * steps2 * alone, steps2 * busy)
    eval_seconds = waves * EVAL_SECONDS
    total = stage1_seconds + stage2_seconds + eval_seconds
    print(f"\nMeasured here ({torch.get_num_threads()} threads), modelled for one H200 (see the docstring):")
    print(
        f"| step | CPU s/step (batch {args.launch_batch}) | model GFLOP/step (profile batch) | kernel launches/step | GPU s/step alone | GPU busy s/step |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['kind']} | {row['cpu_step_seconds']:.3f} | {row['flops'] / 1e9:,.1f} | {row['launches']:,} | "
            f"{row['gpu_alone_seconds'] * 1e3:.1f} ms | {row['gpu_busy_seconds'] * 1e3:.1f} ms |"
        )
    print(
        f"\nEstimate: stage 1 {stage1_seconds / 60:.1f} min ({stage1['max_steps']:,} steps); stage 2 "
        f"{stage2_seconds / 60:.1f} min ({runs} runs x {steps2:,} steps, {parallel} at a time: "
        f"{'launch' if waves * steps2 * alone >= steps2 * busy else 'GPU'}-bound); evaluation {eval_seconds / 60:.1f} "
        f"min; total {total / 60:.1f} min (budget 9 min)"
    )
    return {"rows": rows, "total_seconds": total, "stage1_seconds": stage1_seconds, "stage2_seconds": stage2_seconds}


def overrides_of_shape(config_yaml: dict) -> dict:
    """Stage 2 continues stage 1: its shapes are stage 1's (its own overrides only set dropout)."""
    shape = {k: v for k, v in overrides(config_yaml["stage1"]["config_overrides"]).items()}
    own = overrides(config_yaml["stage2"].get("config_overrides", ""))
    return {
        "config_overrides": ",".join(f"{k}={v}" for k, v in {**shape, **own}.items()),
        "xlco_layer": config_yaml["stage1"]["xlco_layer"],
    }


if __name__ == "__main__":
    main()
