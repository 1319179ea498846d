"""The numerical parts of benchmarks/gpu_check.py: does the model compute the same thing on the device, under bf16,
with gradient checkpointing and under torch.compile, and does a non-finite loss leave the state untouched?
Each part returns {"numbers", "line", "passed"} (gpu_check.py's docstring says what each checks)."""

import statistics
import tempfile
from pathlib import Path

import torch
from measurement import GIB, cuda_peak_since, cuda_peak_start, interleaved_seconds
from transformers import TrainerCallback
from workloads import data_dir_batches, key_encoder_tensors, model_inputs, move, pretraining_dataset, random_infoxlm

from trainer import XLCO, InfoXLMDataCollator, InfoXLMTrainer, InfoXLMTrainingArguments, MomentumSchedule

PARITY_TOLERANCE = 1e-4  # fp32 CPU vs CUDA, relative
BF16_TOLERANCE = 0.02  # bf16 autocast vs fp32, relative


def tiny_or(args, shape: str) -> str:
    return "tiny" if args.smoke else shape


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64 (a scalar loss: |a − b| / |b|)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


def quiet_training_args(output_dir: str, args, **fields) -> InfoXLMTrainingArguments:
    defaults = dict(
        output_dir=output_dir,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
        seed=0,
        use_cpu=args.smoke,
    )
    return InfoXLMTrainingArguments(**{**defaults, **fields})


def check_batches(args, tokenizer, max_seq_length: int, batch_size: int, count: int) -> list[dict]:
    """`count` collated batches from --data_dir's mono/ and tatoeba/ (seed 0)."""
    return data_dir_batches(tokenizer, Path(args.data_dir), max_seq_length, batch_size, count)


# ------------------------------------------------------------------------------------------------ the parts


def part_parity(args, tokenizer, results) -> dict:
    """The same weights and batch on the CPU and on the device in fp32, then bf16 autocast against fp32."""
    device = torch.device(args.device)
    shape = tiny_or(args, "base")
    batch = check_batches(args, tokenizer, 128 if not args.smoke else 64, 4, 1)[0]
    # eval: dropout off, so both sides compute the same thing. Only the key encoder of the XLCO state is used: a
    # queue of 8 keys instead of the config's 131,072 (it holds no weights and enters no output compared here).
    model = random_infoxlm(tokenizer, shape, xlco_queue_size=8).eval()
    xlco = XLCO(model, MomentumSchedule.parse("constant,0.999"))  # the momentum is not used here

    def outputs(target: torch.device, bf16: bool) -> dict[str, torch.Tensor]:
        model.to(target)
        xlco.place(target)
        moved = move(batch, target)
        with torch.no_grad(), torch.autocast(target.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(**model_inputs(moved))
            keys = xlco(moved["xlco"]["key_input_ids"], moved["xlco"]["key_attention_mask"])
        return {
            "mlm_loss": out.mlm_loss.float().cpu(),
            "tlm_loss": out.tlm_loss.float().cpu(),
            "sentence_vectors": out.sentence_vectors.float().cpu(),
            "keys": keys.float().cpu(),
        }

    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32 here
    try:
        cpu = outputs(torch.device("cpu"), bf16=False)
        fp32 = outputs(device, bf16=False)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    bf16 = outputs(device, bf16=True)
    fp32_diff = {name: relative(fp32[name], cpu[name]) for name in cpu}
    bf16_diff = {name: relative(bf16[name], fp32[name]) for name in cpu}
    compared = "CPU vs CPU (--smoke: no GPU)" if device.type == "cpu" else f"CPU vs {device.type}"
    line = (
        f"{shape}, batch 4: fp32 {compared} worst {max(fp32_diff.values()):.2e} (<= {PARITY_TOLERANCE:g}); bf16 vs "
        f"fp32 worst {max(bf16_diff.values()):.2%} (<= {BF16_TOLERANCE:.0%}); losses fp32 "
        f"{float(fp32['mlm_loss']):.4f}/{float(fp32['tlm_loss']):.4f}"
    )
    numbers = {"shape": shape, "compared": compared, "fp32_relative": fp32_diff, "bf16_relative": bf16_diff}
    passed = not (max(fp32_diff.values()) > PARITY_TOLERANCE or max(bf16_diff.values()) > BF16_TOLERANCE)
    return {"numbers": numbers, "line": line, "passed": passed}


class _Snapshots(TrainerCallback):
    """Weights, AdamW moments, key encoder and queue after each update."""

    def __init__(self, trainer: InfoXLMTrainer):
        self.trainer, self.after = trainer, {}

    def on_step_end(self, args, state, control, **kwargs):
        trainer = self.trainer
        state_now = {f"query.{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
        state_now.update({f"key.{k}": v.detach().clone() for k, v in key_encoder_tensors(trainer.xlco).items()})
        state_now["queue"] = trainer.xlco.state_dict()["queue"].clone()
        for index, moments in enumerate(trainer.optimizer.state.values()):
            for name in ("exp_avg", "exp_avg_sq"):
                if name in moments:
                    state_now[f"adamw.{index}.{name}"] = moments[name].detach().clone()
        self.after[state.global_step] = state_now


def part_nonfinite_skip(args, tokenizer, results) -> dict:
    """trainer.train() under bf16 with the MLM pass of update 2 poisoned to NaN."""
    shape = tiny_or(args, "base")
    model = random_infoxlm(tokenizer, shape, xlco_queue_size=32)
    data = Path(args.data_dir)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = InfoXLMTrainer(
            model=model,
            args=quiet_training_args(
                output_dir,
                args,
                max_steps=3,
                per_device_train_batch_size=4,
                learning_rate=1e-4,
                bf16=True,
                xlco_queue_fill="masked",
                logging_steps=1000,  # the snapshots are the record; no log lines
            ),
            train_dataset=pretraining_dataset(tokenizer, [str(data / "mono")], [str(data / "tatoeba")], 64),
            data_collator=InfoXLMDataCollator(tokenizer),
        )
        snapshots = _Snapshots(trainer)
        trainer.add_callback(snapshots)
        calls = {"n": 0}

        def poison_update_2(module, inputs, output):  # lm_head runs twice per update: MLM, then TLM
            calls["n"] += 1
            return output * float("nan") if calls["n"] == 3 else output

        hook = trainer.model.lm_head.register_forward_hook(poison_update_2)
        try:
            trainer.train()
        finally:
            hook.remove()
    after = snapshots.after
    if sorted(after) != [1, 2, 3]:
        return {"line": f"expected snapshots after updates 1, 2, 3; got {sorted(after)}", "passed": False}
    moved = {k: float((after[2][k].float() - after[1][k].float()).abs().max()) for k in after[1]}
    groups = {
        group: max((v for k, v in moved.items() if k.startswith(group)), default=None)
        for group in ("query.", "key.", "queue", "adamw.")
    }
    changed_3 = max(float((after[3][k].float() - after[2][k].float()).abs().max()) for k in after[2])
    finite_3 = all(bool(torch.isfinite(v).all()) for v in after[3].values())
    numbers = {"shape": shape, "max_change_in_update_2": groups, "max_change_in_update_3": changed_3}
    untouched = all(value == 0 for value in groups.values() if value is not None) and groups["adamw."] is not None
    line = (
        f"{shape}, bf16: NaN at update 2 moved weights {groups['query.']:g}, AdamW moments {groups['adamw.']}, key "
        f"encoder {groups['key.']:g}, queue {groups['queue']:g} (all must be 0); update 3 moved {changed_3:.2e}, "
        f"finite {finite_3}"
    )
    passed = untouched and changed_3 > 0 and finite_3
    return {"numbers": numbers, "line": line, "passed": passed}


def part_gradient_checkpointing(args, tokenizer, results) -> dict:
    """One forward + backward of MLM + TLM + XLCO with gradient checkpointing off, then on (same weights, batch)."""
    device = torch.device(args.device)
    shape = tiny_or(args, "base")
    seq, size = (64, 4) if args.smoke else (512, 16)
    batch = move(check_batches(args, tokenizer, seq, size, 1)[0], device)
    model = random_infoxlm(tokenizer, shape, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model.to(device).train()
    runs = {}
    for checkpointing in (False, True):
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.zero_grad(set_to_none=True)
        base = cuda_peak_start(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(**model_inputs(batch))
            loss = out.loss + out.sentence_vectors.float().pow(2).mean()  # the XLCO pass gets a gradient too
        loss.backward()
        peak = cuda_peak_since(device, base)
        peak = None if peak is None else peak / GIB
        grads = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])
        runs[checkpointing] = (loss.detach().float(), grads, peak)
    model.gradient_checkpointing_disable()
    loss_diff = relative(runs[True][0], runs[False][0])
    grad_diff = relative(runs[True][1], runs[False][1])
    peak_off, peak_on = runs[False][2], runs[True][2]
    numbers = {
        "shape": shape,
        "seq": seq,
        "batch": size,
        "loss_relative": loss_diff,
        "grad_relative": grad_diff,
        "peak_gib_off": peak_off,
        "peak_gib_on": peak_on,
    }
    grad_tolerance = 1e-2 if device.type == "cuda" else 1e-5  # bf16 atomics on the GPU; the same math on the CPU
    memory = (
        f"peak {peak_off:.2f} -> {peak_on:.2f} GiB (saved {1 - peak_on / peak_off:.0%})"
        if peak_on is not None
        else "memory not measured on the CPU"
    )
    line = f"{shape}, seq {seq}, batch {size}: loss diff {loss_diff:.1e}, gradient diff {grad_diff:.1e}; {memory}"
    passed = not (loss_diff > 1e-6 or grad_diff > grad_tolerance or (peak_on is not None and peak_on >= peak_off))
    return {"numbers": numbers, "line": line, "passed": passed}


def part_compile(args, tokenizer, results) -> dict:
    """torch.compile of one training forward + backward against eager, on the same batches and weights."""
    import torch._dynamo

    device = torch.device(args.device)
    shape = tiny_or(args, "base")
    seq, size = (32, 2) if args.smoke else (128, 16)
    # --smoke: TorchDynamo alone (graph capture, breaks, recompiles) without AOTAutograd/Inductor's minutes on a CPU.
    backend = "eager" if args.smoke else "inductor"
    steps, warmup = min(args.steps, 5), min(args.warmup_steps, 2)  # each new shape may compile again: keep it short
    # On the GPU, batches of varying lengths (what training feeds; recompiles show); --smoke repeats one batch, so
    # that its single compilation is all the CPU pays for.
    data = [move(b, device) for b in check_batches(args, tokenizer, seq, size, 1 if args.smoke else warmup + steps)]
    data = data * (warmup + steps) if args.smoke else data
    model = random_infoxlm(tokenizer, shape, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model.to(device).train()
    bf16 = device.type == "cuda"

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = torch.compile(model, backend=backend)

    def step(module, batch):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = module(**model_inputs(batch))
            loss = out.loss + out.sentence_vectors.float().pow(2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        return loss.detach()

    losses = {"eager": [], "compiled": []}

    def run(name, module):
        return lambda batch: losses[name].append(step(module, batch))

    times = interleaved_seconds({"eager": run("eager", model), "compiled": run("compiled", compiled)}, data, device)
    first_compile = times["compiled"][0]
    times = {name: values[warmup:] for name, values in times.items()}
    counters = torch._dynamo.utils.counters
    frames = counters["stats"]["unique_graphs"]
    breaks = counters["graph_break"]  # reason -> count, over every compilation of the run
    eager, fast = statistics.median(times["eager"]), statistics.median(times["compiled"])
    loss_diff = max(relative(a.float(), b.float()) for a, b in zip(losses["compiled"], losses["eager"]))
    numbers = {
        "shape": shape,
        "backend": backend,
        "graph_breaks": sum(breaks.values()),
        "break_reasons": {str(reason)[:300]: count for reason, count in breaks.most_common(10)},
        "compiled_graphs_over_the_run": frames,
        "first_step_seconds": first_compile,
        "eager_step_seconds": eager,
        "compiled_step_seconds": fast,
        "loss_relative": loss_diff,
    }
    line = (
        f"{shape}, seq {seq}, batch {size}, {backend}: {sum(breaks.values())} graph breaks, "
        f"{frames} graphs compiled over {len(data)} steps ({'one batch repeated' if args.smoke else 'varying lengths'}; "
        f"first step {first_compile:.1f} s); "
        f"step {fast * 1e3:.0f} ms compiled vs {eager * 1e3:.0f} ms eager (x{eager / fast:.2f}); loss diff "
        f"{loss_diff:.1e}"
    )
    passed = not (loss_diff > (2e-2 if bf16 else 1e-4))
    return {"numbers": numbers, "line": line, "passed": passed}
