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
normal keys through `XLCO.load_state_dict` (speed does not depend on the keys' values, and prefilling 131,072 keys
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
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch
from ablations import print_ablations
from host_syncs import count_host_syncs
from measurement import (
    GIB,
    Stopwatch,
    cuda_peak_since,
    cuda_peak_start,
    current_rss,
    datasheet_peak,
    machine_line,
    matmul_peak,
    peak_rss,
    quiet_logs,
    reset_peak_rss,
    synchronize,
)
from step_variants import (
    Baseline,
    Ours,
    add_step_arguments,
    build_variants,
    real_step,
    shape_line,
    time_interleaved,
    variant_keys,
)
from transformers import AutoTokenizer
from workloads import collate_batches, key_encoder_layers, key_encoder_tensors, mlm_tlm_tokens, move


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_step_arguments(parser)
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
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--peak_tflops", type=float, default=None, help="Datasheet peak for MFU on GPU.")
    # Internal: one variant's peak memory, in a fresh process (see the module docstring).
    parser.add_argument("--memory_probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batches_file", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------------ memory


def memory_probe(args) -> None:
    """Runs in a fresh process: builds one variant, runs --memory_steps real steps, prints its peak memory."""
    device = torch.device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    batches = torch.load(args.batches_file)
    if device.type == "cuda":
        base = cuda_peak_start(device)
    else:
        gc.collect()
        if not reset_peak_rss():  # the peak so far is then this process's start-up, below what follows
            print("(could not reset the peak RSS; measuring against the current RSS)", file=sys.stderr)
        base = current_rss()
    with tempfile.TemporaryDirectory() as output_dir:
        (variant,) = build_variants(args, tokenizer, output_dir, only=args.memory_probe)
        for batch in batches[: args.memory_steps]:
            real_step(variant, batch)
        synchronize(device)
    peak = cuda_peak_since(device, base) if device.type == "cuda" else peak_rss() - base
    print("MEMORY_PROBE " + json.dumps({"peak_bytes": peak}))


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
        xlco = variant.trainer.xlco
        above = [layer_calls[i] for i in range(config.xlco_layer + 1, config.num_hidden_layers + 1)]
        below = [layer_calls[i] for i in range(1, config.xlco_layer + 1)]
        stops = set(below) == {3} and set(above) <= {2}  # MLM + TLM + XLCO query below, MLM + TLM above
        lines.append(
            f"query encoder layer calls per step: layers 1..{config.xlco_layer}: {sorted(set(below))}, "
            f"layers {config.xlco_layer + 1}..{config.num_hidden_layers}: {sorted(set(above))} "
            f"(XLCO query pass stops at xlco_layer: {'yes' if stops else 'NO'})"
        )
        lines.append(
            f"key encoder: {key_encoder_layers(xlco)} layers (xlco_layer {xlco.describe()['xlco_layer']}), "
            f"{sum(t.numel() for t in key_encoder_tensors(xlco).values()):,} parameters vs "
            f"{sum(p.numel() for p in model.parameters()):,} in the query model; attention "
            f"{key_encoder_attention(xlco, batch)}"
        )
        lines.append(f"EMA: torch._foreach_lerp_ calls per step: {len(lerp_calls)} (over {sum(lerp_calls)} tensors)")
        lines.append(f"queue: {xlco.queue_size:,} keys, full: {xlco.fill_fraction >= 1}")
    sites = ", ".join(f"{site} x{n}" for site, n in sorted(syncs.items())) or "none"
    lines.append(f"host syncs per step: {sum(syncs.values())} ({sites})")
    variant.host_syncs = sum(syncs.values())
    return [f"{variant.name}: {line}" for line in lines]


def key_encoder_attention(xlco, batch: dict) -> str:
    """ "sdpa" when one key-encoder pass on the batch's keys calls torch's scaled_dot_product_attention once per key
    layer (what transformers' SDPA attention does), else what it called: read from the calls, since the key encoder
    itself is XLCO's own."""
    original, calls = torch.nn.functional.scaled_dot_product_attention, []

    def counting_sdpa(*a, **k):
        calls.append(1)
        return original(*a, **k)

    torch.nn.functional.scaled_dot_product_attention = counting_sdpa
    try:
        xlco(batch["xlco"]["key_input_ids"], batch["xlco"]["key_attention_mask"])
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    layers = key_encoder_layers(xlco)
    return "sdpa" if len(calls) == layers else f"not sdpa ({len(calls)} SDPA calls in {layers} layers)"


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


def main():
    args = parse_args()
    quiet_logs("transformers", "accelerate", "trainer")
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
        return print_ablations(args, tokenizer, batches, device)
    if args.profile:
        return profile_steps(args, tokenizer, batches, device)

    peaks = {} if args.skip_memory else measure_memory(args, batches, device)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    peak_flops = matmul_peak(device, dtype)
    with tempfile.TemporaryDirectory() as output_dir:
        variants = build_variants(args, tokenizer, output_dir)
    # Checks on a step of their own (hooks and counters would distort a timed one); also a warm-up.
    check_lines = [line for variant in variants for line in checks(variant, batches[-1])]
    timed = batches[: args.warmup_steps + args.steps]
    times = time_interleaved(variants, timed, args.warmup_steps, device)
    components = {}
    for variant in variants:
        watch = Stopwatch(device)
        for batch in batches[-1 - args.component_repeats : -1]:
            variant.instrumented(batch, watch)
        components[variant.name] = {name: value / args.component_repeats for name, value in watch.laps.items()}

    print(f"\nStep time: {shape_line(args, tokenizer)}")
    ours = [v for v in variants if isinstance(v, Ours)]
    if ours:
        print(f"queue filled with {args.queue_fill} keys ({', '.join(f'{v.fill_seconds:.1f} s' for v in ours)})")
    print_components(args, variants, components, times)
    sheet = datasheet_peak(device, args.bf16, args.peak_tflops)
    summary = print_real_steps(args, variants, times, timed[args.warmup_steps :], peaks, peak_flops, sheet)
    print(f"\nmatmul peak: {peak_flops / 1e9:,.1f} GFLOP/s ({dtype}, 2048^3, best of 8)")
    print_targets(args, variants, summary, peaks)
    print("\nChecks (one extra, hooked step per variant)")
    for line in check_lines:
        print(f"- {line}")


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_components(args, variants: list, components: dict, times: dict) -> None:
    names = [v.name for v in variants]
    print(f"\nPer component (instrumented pass, mean of {args.component_repeats}; seconds)")
    rows = list(dict.fromkeys(name for v in variants for name in components[v.name]))
    print("| component | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in rows:
        print(f"| {row} | " + " | ".join(seconds(components[n].get(row)) for n in names) + " |")
    print("| **sum of components** | " + " | ".join(f"{sum(components[n].values()):.3f}" for n in names) + " |")
    print("| **real step (median)** | " + " | ".join(f"{statistics.median(times[n]):.3f}" for n in names) + " |")


def print_real_steps(args, variants, times, timed_batches, peaks, peak_flops, sheet) -> dict:
    """The real-steps table; returns {variant key: (median step seconds, peak memory bytes or None)}."""
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
        key = "baseline" if isinstance(variant, Baseline) else f"ours:{variant.trainer.xlco.queue_size}"
        if peaks:
            line += f" {peaks[key] / GIB:.2f} |"
        print(line)
        summary[key] = (step, peaks.get(key))
    return summary


def print_targets(args, variants: list, summary: dict, peaks: dict) -> None:
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


if __name__ == "__main__":
    main()
