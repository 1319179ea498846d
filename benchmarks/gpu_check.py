#!/usr/bin/env python
"""The first GPU run, prepared: one command that checks InfoXLM on a CUDA GPU and prints PASS/FAIL with numbers.

    python benchmarks/gpu_check.py                       # on a GPU machine: <= 8 min on one H200, no network
    python benchmarks/gpu_check.py --smoke               # every part on the CPU at tiny shapes (CI, ~1 min of CPU)
    python benchmarks/gpu_check.py --parts parity step_time --output /tmp/check.json

No network and no Hub: the models are random-initialised XLM-R base (12 x 768) and large (24 x 1024) configs, the
tokenizer is the real XLM-R one from a local folder (--tokenizer, default ../shared/data/xlmr-tokenizer) and the data
is ../shared/data (mono/ and tatoeba/). On a bare GPU machine, `python benchmarks/gpu_carry.py prepare` here and
`python3 benchmarks/gpu_carry.py run --check` there bring both (docs/performance.md, "First GPU run").

Parts, in order (each prints one PASS/FAIL line with its numbers; --parts runs a subset):
  environment             GPU, capability, memory, library versions, bf16 support, the SDPA kernel our model runs
  parity                  the same weights and batch on CPU and CUDA in fp32 (MLM/TLM losses, XLCO sentence vectors,
                          key-encoder keys: relative difference <= 1e-4, TF32 off), bf16 autocast against fp32 (<= 2%)
  nonfinite_skip          a NaN loss at update 2 under --bf16: weights, AdamW moments, key encoder and queue after
                          update 2 equal those after update 1 (bitwise); update 3 trains on, finite
  gradient_checkpointing  the same step with and without: same loss, gradients within tolerance, peak memory saved
  step_time               ours (InfoXLMTrainer, MLM+TLM+XLCO, queue 131,072) against 🤗 XLMRobertaForMaskedLM under the
                          stock Trainer on the same MLM+TLM batches (benchmarks/step_time.py's variants, from
                          step_variants.py), base and large, seq 512, batch 16, bf16: step ratio, tokens/s, model
                          FLOP/s against a bf16 matmul peak measured in the same run, peak memory
  data_supply             items/s one rank's loader produces at world size 8 (benchmarks/data_throughput.py's
                          `rank_items_per_second`) against the items/s the GPU consumed in step_time
  run_pretrain            `run_pretrain.py --bf16` end to end with a checkpoint, then a resume in a new process
  compile                 torch.compile of the model's training forward + backward: graph breaks, recompiles, step
                          time against eager (last: a compiler crash cannot hide the other parts)

Under --smoke each part runs on the CPU at tiny shapes: the parity part then compares CPU with CPU (it says so), the
memory numbers are not measured, and torch.compile uses the eager backend (TorchDynamo's capture alone: graph breaks
and recompiles are still counted, without minutes of compilation on a CPU). The exit
status is 0 if every part passed, 1 otherwise; the JSON (--output) holds every number, and a failed part's traceback.
The numerical parts (parity, nonfinite_skip, gradient_checkpointing, compile) are in benchmarks/gpu_check_numerics.py.
"""

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import torch  # noqa: E402
from gpu_check_numerics import (  # noqa: E402
    check_batches,
    part_compile,
    part_gradient_checkpointing,
    part_nonfinite_skip,
    part_parity,
)
from measurement import GIB, cuda_peak_since, cuda_peak_start, matmul_peak, quiet_logs  # noqa: E402
from step_variants import build_variants, step_arguments, time_interleaved, variant_keys  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402
from workloads import SHAPES, SHARED, mlm_tlm_tokens, model_inputs, move, random_infoxlm  # noqa: E402

from trainer.output_folder import write_files_atomically  # noqa: E402

PARTS = (
    "environment",
    "parity",
    "nonfinite_skip",
    "gradient_checkpointing",
    "step_time",
    "data_supply",
    "run_pretrain",
    "compile",
)
PACKAGES = ("torch", "transformers", "accelerate", "datasets", "torchdata", "tokenizers", "safetensors", "babel")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="Every part on the CPU at tiny shapes (CI).")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--tokenizer", default=str(SHARED / "xlmr-tokenizer"))
    parser.add_argument("--data_dir", default=str(SHARED), help="Holds mono/ and tatoeba/.")
    parser.add_argument("--output", default=str(REPO / "outputs" / "gpu_check" / "gpu_check.json"))
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per variant (default 10; smoke 1).")
    parser.add_argument("--warmup_steps", type=int, default=None, help="Default 3; smoke 1.")
    args = parser.parse_args(argv)
    args.device = "cpu" if args.smoke else "cuda"
    args.steps = args.steps or (1 if args.smoke else 10)
    args.warmup_steps = args.warmup_steps if args.warmup_steps is not None else (1 if args.smoke else 3)
    return args


def step_args(args, shape: str, max_seq_length: int, batch_size: int, bf16: bool) -> argparse.Namespace:
    """benchmarks/step_time.py's step arguments for one shape: its variants are reused as they are."""
    shape_fields = SHAPES[shape]
    data = Path(args.data_dir)
    return step_arguments(
        [
            "--tokenizer", args.tokenizer,
            "--mono_data", str(data / "mono"),
            "--parallel_data", str(data / "tatoeba"),
            "--max_seq_length", str(max_seq_length),
            "--batch_size", str(batch_size),
            *[argument for name, value in shape_fields.items() for argument in (f"--{name}", str(value))],
            "--queue_size", str(64 if args.smoke else 131072),
            "--device", args.device,
            *(["--bf16"] if bf16 else []),
        ]
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ the parts


def part_environment(args, tokenizer, results) -> dict:
    device = torch.device(args.device)
    numbers = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {name: _version(name) for name in PACKAGES},
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return {"line": "torch sees no CUDA device (run with --smoke on a machine without a GPU)", "passed": False}
        properties = torch.cuda.get_device_properties(device)
        numbers.update(
            gpu=properties.name,
            capability=f"{properties.major}.{properties.minor}",
            gpu_memory_gib=round(properties.total_memory / GIB, 1),
            multiprocessors=properties.multi_processor_count,
            bf16_supported=torch.cuda.is_bf16_supported(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            sdpa_backends_enabled={
                "flash": torch.backends.cuda.flash_sdp_enabled(),
                "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
                "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
                "math": torch.backends.cuda.math_sdp_enabled(),
            },
        )
    else:
        numbers["bf16_supported"] = True  # CPU autocast runs bf16 everywhere (slowly without AVX512-BF16/AMX)
    # The attention kernel our model really runs: the SDPA operator in a profile of one bf16 training forward on a
    # padded batch (the mask decides between the flash, memory-efficient, cuDNN and math kernels).
    model = random_infoxlm(tokenizer, "tiny").to(device).train()
    batch = move(check_batches(args, tokenizer, 64, 4, 1)[0], device)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            model(**model_inputs(batch))
    kernels = sorted({e.key for e in profiler.key_averages() if e.key.startswith("aten::_scaled_dot_product")})
    numbers["attn_implementation"] = model.config._attn_implementation
    numbers["sdpa_kernels_in_use"] = kernels
    line = (
        f"{numbers.get('gpu', 'CPU')} ({numbers.get('capability', platform.machine())}), torch "
        f"{numbers['versions']['torch']} (CUDA {numbers['torch_cuda']}), transformers "
        f"{numbers['versions']['transformers']}, bf16 {numbers['bf16_supported']}, attention "
        f"{numbers['attn_implementation']}: {', '.join(kernels) or 'no SDPA operator seen'}"
    )
    if not numbers["bf16_supported"] or not kernels:
        return {"line": line, "passed": False}
    return {"numbers": numbers, "line": line, "passed": True}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def part_step_time(args, tokenizer, results) -> dict:
    """step_time.py's baseline and ours, one after the other (a dedicated GPU: no interleaving needed), per shape."""
    device = torch.device(args.device)
    seq, size = (32, 2) if args.smoke else (512, 16)
    bf16 = device.type == "cuda"
    dtype = torch.bfloat16 if bf16 else torch.float32
    peak = matmul_peak(device, dtype, size=512 if args.smoke else 8192, repeats=3 if args.smoke else 10)
    count = args.warmup_steps + args.steps
    shared_batches = [move(b, device) for b in check_batches(args, tokenizer, seq, size, count)]
    numbers = {"matmul_peak_tflops": peak / 1e12, "dtype": str(dtype), "seq": seq, "batch": size, "shapes": {}}
    lines = []
    for shape in ("tiny",) if args.smoke else ("base", "large"):
        shape_args = step_args(args, shape, seq, size, bf16)
        rows = {}
        for key in variant_keys(shape_args):
            base = cuda_peak_start(device)
            with tempfile.TemporaryDirectory() as output_dir:
                (variant,) = build_variants(shape_args, tokenizer, output_dir, only=key)
            times = time_interleaved([variant], shared_batches, args.warmup_steps, device)[variant.name]
            memory = cuda_peak_since(device, base)
            timed = shared_batches[args.warmup_steps :]
            total = sum(times)
            flops = sum(variant.flops(b) for b in timed)
            rows[variant.name] = {
                "step_seconds": statistics.median(times),
                "tokens_per_second": sum(variant.tokens(b) for b in timed) / total,
                "mlm_tlm_tokens_per_second": sum(mlm_tlm_tokens(b) for b in timed) / total,
                "model_tflops_per_second": flops / total / 1e12,
                "fraction_of_matmul_peak": flops / total / peak,
                "peak_memory_gib": None if memory is None else memory / GIB,
                "items_per_second": size / statistics.median(times),
            }
            del variant
            gc.collect()
        ratio = rows["ours"]["step_seconds"] / rows["baseline"]["step_seconds"]
        numbers["shapes"][shape] = {"ours_over_baseline": ratio, **rows}
        ours = rows["ours"]
        memory = f", peak {ours['peak_memory_gib']:.1f} GiB" if ours["peak_memory_gib"] is not None else ""
        lines.append(
            f"{shape}: ours {ours['step_seconds'] * 1e3:.0f} ms vs 🤗 {rows['baseline']['step_seconds'] * 1e3:.0f} ms "
            f"(x{ratio:.2f}), {ours['tokens_per_second']:,.0f} tok/s, {ours['model_tflops_per_second']:.1f} TFLOP/s "
            f"= {ours['fraction_of_matmul_peak']:.0%} of the matmul peak{memory}"
        )
    results["consumed_items_per_second"] = numbers["shapes"]["tiny" if args.smoke else "base"]["ours"][
        "items_per_second"
    ]
    line = f"seq {seq}, batch {size}, {dtype}, matmul peak {peak / 1e12:.1f} TFLOP/s; " + "; ".join(lines)
    # Goals from #19, reported, not gates: ours <= 0.5x the 🤗 step at base, >= 40% of the peak, large <= 40 GiB.
    if not args.smoke:
        base, large = numbers["shapes"]["base"], numbers["shapes"]["large"]["ours"]
        numbers["goals"] = {
            "base_ratio_at_most_0.5": base["ours_over_baseline"] <= 0.5,
            "base_at_least_40pct_of_peak": base["ours"]["fraction_of_matmul_peak"] >= 0.4,
            "large_within_40_gib": large["peak_memory_gib"] is not None and large["peak_memory_gib"] <= 40,
        }
    return {"numbers": numbers, "line": line, "passed": True}


def part_data_supply(args, tokenizer, results) -> dict:
    from data_throughput import rank_items_per_second as measure  # beside this file (benchmarks/)

    seq, size = (64, 2) if args.smoke else (512, 16)
    data = Path(args.data_dir)
    workers = 0 if args.smoke else 2
    produced = measure(
        tokenizer=tokenizer,
        mono_data=[str(data / "mono")],
        parallel_data=[str(data / "tatoeba")],
        max_seq_length=seq,
        batch_size=size,
        world_size=8,
        rank=0,
        num_workers=workers,
        seconds=2.0 if args.smoke else 10.0,
    )
    consumed = results.get("consumed_items_per_second")
    numbers = {"produced_items_per_second": produced, "consumed_items_per_second": consumed, "num_workers": workers}
    line = f"rank 0 of 8, {workers} workers, seq {seq}: loader {produced:,.1f} items/s"
    if consumed is None:
        line += "; the GPU's consumption is unknown (step_time did not run or failed)"
        return {"numbers": numbers, "line": line, "passed": False}
    line += f" vs {consumed:,.1f} items/s consumed by ours at {'tiny' if args.smoke else 'base'} (x{produced / consumed:.1f})"
    # On the CPU the model is too small to say anything about feeding.
    return {"numbers": numbers, "line": line, "passed": not (produced < consumed and not args.smoke)}


def part_run_pretrain(args, tokenizer, results) -> dict:
    """run_pretrain.py --bf16 for 2 updates with a checkpoint (in this process), then a resume to 4 in a new one."""
    import run_pretrain

    data = Path(args.data_dir)
    overrides = "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128"
    with tempfile.TemporaryDirectory() as output_dir:
        common = [
            "--tokenizer_name", args.tokenizer,
            "--config_overrides", f"{overrides},max_position_embeddings=130,xlco_queue_size=16",
            "--xlco_layer", "1",
            "--mono_data", str(data / "mono"),
            "--parallel_data", str(data / "tatoeba" / "tatoeba.fra-eng.fra"), str(data / "tatoeba" / "tatoeba.deu-eng.deu"),
            "--max_seq_length", "64",
            "--streaming", "True",
            "--per_device_train_batch_size", "4",
            "--save_strategy", "steps",
            "--save_steps", "2",
            "--logging_steps", "1",
            "--bf16",
            "--report_to", "none",
            "--disable_tqdm", "True",
            "--output_dir", output_dir,
            *(["--use_cpu"] if args.smoke else []),
        ]  # fmt: skip
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            run_pretrain.main([*common, "--max_steps", "2"])
        first = time.perf_counter() - started
        started = time.perf_counter()
        resumed = subprocess.run(
            [sys.executable, str(REPO / "run_pretrain.py"), *common, "--max_steps", "4"]
            + ["--resume_from_checkpoint", "True"],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        second = time.perf_counter() - started
        if resumed.returncode != 0:
            line = f"the resumed run failed (exit {resumed.returncode}): {resumed.stderr.strip()[-2000:]}"
            return {"line": line, "passed": False}
        state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
        losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
        checkpoints = sorted(p.name for p in Path(output_dir).glob("checkpoint-*"))
    numbers = {
        "global_step": state["global_step"],
        "losses": losses,
        "checkpoints": checkpoints,
        "seconds": [first, second],
    }
    line = (
        f"bf16: 2 updates + checkpoint ({first:.0f} s), resumed in a new process to update {state['global_step']} "
        f"({second:.0f} s); losses {', '.join(f'{v:.3f}' for v in losses)}; {', '.join(checkpoints)}"
    )
    finite = all(math.isfinite(v) for v in losses)
    passed = state["global_step"] == 4 and finite and "checkpoint-2" in checkpoints and len(losses) >= 2
    return {"numbers": numbers, "line": line, "passed": passed}


# ------------------------------------------------------------------------------------------------ main


# Each part: (args, tokenizer, results) -> {"numbers", "line", "passed"}; `results` carries numbers to a later part.
PART_FUNCTIONS = {
    "environment": part_environment,
    "parity": part_parity,
    "nonfinite_skip": part_nonfinite_skip,
    "gradient_checkpointing": part_gradient_checkpointing,
    "step_time": part_step_time,
    "data_supply": part_data_supply,
    "run_pretrain": part_run_pretrain,
    "compile": part_compile,
}


def run_part(name: str, function, args, tokenizer, results: dict) -> dict:
    """Runs one part: its record holds PASS or FAIL (the part's verdict on its numbers, or a crash), its line and
    numbers, and the seconds it took."""
    started = time.perf_counter()
    record = {"status": "PASS"}
    try:
        verdict = function(args, tokenizer, results)
        record.update(status="PASS" if verdict.pop("passed") else "FAIL", **verdict)
    except Exception as error:  # a crash is this part's FAIL; the other parts still run and report
        record.update(status="FAIL", line=f"{type(error).__name__}: {error}"[:2000], traceback=traceback.format_exc())
    record["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{record['status']}  {name:<23} {record['line']}  [{record['seconds']:.0f} s]", flush=True)
    if "traceback" in record and os.environ.get("INFOXLM_DEBUG"):
        print(record["traceback"], file=sys.stderr)
    return record


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_logs("transformers", "accelerate", "trainer", "run_pretrain", "torch._dynamo", "torch._inductor")
    output = Path(args.output)
    for path, what in ((Path(args.tokenizer), "--tokenizer"), (Path(args.data_dir) / "mono", "--data_dir")):
        if not path.exists():
            print(
                f"gpu_check.py: error: {what}: {path} does not exist; pass the XLM-R tokenizer folder and the data "
                "folder (mono/, tatoeba/), or run `python3 benchmarks/gpu_carry.py run --check` on a bare machine.",
                file=sys.stderr,
            )
            return 2
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    started = time.perf_counter()
    report = {
        "smoke": args.smoke,
        "device": args.device,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "tokenizer": args.tokenizer,
        "parts": {},
    }
    print(f"gpu_check: {'--smoke, CPU, tiny shapes' if args.smoke else 'CUDA'}; parts {', '.join(args.parts)}")
    results: dict = {}  # numbers one part hands to a later one (the GPU's item rate for data_supply)
    for name in PARTS:
        if name in args.parts:
            report["parts"][name] = run_part(name, PART_FUNCTIONS[name], args, tokenizer, results)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["passed"] = all(part["status"] == "PASS" for part in report["parts"].values())
    output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1, default=str)
    write_files_atomically({output: lambda path: Path(path).write_text(text)})  # never a half-written report
    failed = [name for name, part in report["parts"].items() if part["status"] != "PASS"]
    print(
        f"{'PASS' if not failed else 'FAIL'}: {len(report['parts']) - len(failed)}/{len(report['parts'])} parts in "
        f"{report['seconds']:.0f} s{'; failed: ' + ', '.join(failed) if failed else ''}. JSON: {output}"
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
