"""Which launchers, parallelism and precisions `InfoXLMTrainer` trains correctly with: the rest is refused up front."""

import os
import sys

import torch
from accelerate.utils import str_to_bool


def _flag(name: str) -> bool:
    return bool(str_to_bool(os.environ.get(name, "false")))


def has_accelerator() -> bool:
    """Whether torch sees an accelerator (a GPU) for this process."""
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    return accelerator.is_available() if accelerator is not None else torch.cuda.is_available()


def _launch_commands(processes: int | str) -> str:
    script = os.path.basename(sys.argv[0]) or "run_pretrain.py"
    if not script.endswith(".py"):
        script = "run_pretrain.py"
    return (
        f"`accelerate launch --num_processes {processes} {script} ...` or "
        f"`torchrun --nproc_per_node {processes} {script} ...`"
    )


def unsupported_setup(args) -> str | None:
    """
    Why `args` (a `TrainingArguments`, before its devices are set up) would not train InfoXLM correctly, or None.
    Reads the environment the launchers set (`ACCELERATE_USE_FSDP`, `ACCELERATE_USE_DEEPSPEED`, `WORLD_SIZE`) and
    the visible GPUs, without initialising CUDA.

    - FSDP and DeepSpeed: the key encoder's EMA pairs its parameters with the query model's by name and reads them
      whole, and the trainer steps the optimizer through the 🤗 loop; FSDP shards (and flattens) those parameters,
      DeepSpeed owns the step and the low-precision weights. Neither is supported.
    - Several GPUs in one process: the Trainer wraps the model in `torch.nn.DataParallel`, which averages the
      replicas' losses, mis-weighting the summed, sample-size-normalised objectives (and the key encoder would see
      one GPU's keys). One process per GPU (DDP) is what works.
    - `--fp16` without a GPU: accelerate then neither autocasts nor scales, so the run would be fp32 while saying
      fp16.
    """
    if args.fsdp or _flag("ACCELERATE_USE_FSDP"):
        return (
            "FSDP is not supported by InfoXLMTrainer (its key-encoder EMA pairs whole parameters by name, which FSDP "
            "shards): drop --fsdp (or the FSDP section of your accelerate config) and train with DDP, one process "
            f"per GPU: {_launch_commands('N')}."
        )
    if args.deepspeed or _flag("ACCELERATE_USE_DEEPSPEED"):
        return (
            "DeepSpeed is not supported by InfoXLMTrainer (the engine owns the optimizer step and the weights that "
            "its key-encoder EMA reads): drop --deepspeed (or the DeepSpeed section of your accelerate config) and "
            f"train with DDP, one process per GPU: {_launch_commands('N')}."
        )
    on_cpu = args.use_cpu or _flag("ACCELERATE_USE_CPU")
    if args.fp16 and (on_cpu or not has_accelerator()):
        return (
            "--fp16 needs a GPU: on the CPU accelerate neither autocasts to float16 nor scales the loss, so the run "
            "would silently be float32. Use --bf16 (CPU autocast) or drop --fp16."
        )
    single_process = int(os.environ.get("WORLD_SIZE", "1")) <= 1
    if not on_cpu and single_process and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        gpus = torch.cuda.device_count()
        return (
            f"{gpus} GPUs are visible to a single process: the Trainer would wrap the model in "
            "torch.nn.DataParallel, whose averaging of the GPUs' losses mis-weights InfoXLM's summed objectives. "
            f"Start one process per GPU: {_launch_commands(gpus)}; or use one GPU with CUDA_VISIBLE_DEVICES=0."
        )
    return None
