"""`InfoXLMTrainingArguments`: every `TrainingArguments` flag plus the objectives and the XLCO training state."""

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .launch_checks import unsupported_setup
from .xlco import MomentumSchedule

OBJECTIVES = ("mlm", "tlm", "xlco")
# One worker already overlaps loading with the step; two give headroom over a base model's appetite on one GPU
# (docs/performance.md) for two more host processes per GPU.
GPU_DATALOADER_WORKERS = 2


@dataclass
class InfoXLMTrainingArguments(TrainingArguments):
    """
    `per_device_train_batch_size` counts examples per objective: each optimizer step (per accumulation step and
    device) sees that many MLM blocks, TLM pairs and XLCO pairs. The XLCO fields of the model live in its config
    (`xlco_layer`, `xlco_temperature`, `xlco_queue_size`, projection); these are the training-time ones.
    """

    objectives: str = field(
        default="mlm,tlm,xlco", metadata={"help": "Comma-separated subset of mlm,tlm,xlco to train on."}
    )
    loss_normalization: str = field(
        default="reference",
        metadata={
            "help": "reference: as fairseq, (λ_xlco·ΣCE_xlco + λ_tlm·ΣCE_tlm + λ_mlm·ΣCE_mlm) divided by the update's "
            "summed sample size (XLCO sentences + masked TLM and MLM tokens, over every micro-batch and rank): one "
            "XLCO sentence weighs as much as one masked token. mean: each objective's mean, added with its λ."
        },
    )
    lambda_mlm: float = field(default=1.0, metadata={"help": "Weight of the MLM loss."})
    lambda_tlm: float = field(default=1.0, metadata={"help": "Weight of the TLM loss."})
    lambda_xlco: float = field(default=1.0, metadata={"help": "Weight of the XLCO loss (the paper's λ)."})
    xlco_momentum: str | None = field(
        default=None,
        metadata={
            "help": 'Key-encoder momentum schedule: "constant,m", "constant_with_refresh,m,interval", '
            '"linear,begin,end,m_min,m_max" or "exponential,alpha,m_min,m_max". '
            "Default: constant at the model config's xlco_momentum (0.9999)."
        },
    )
    xlco_enable_step: int = field(
        default=0,
        metadata={
            "help": "Optimizer updates before the XLCO loss starts. Until then the key encoder copies the query "
            "encoder after every update (momentum 0) and its keys fill the queue."
        },
    )
    xlco_queue_fill: str = field(
        default="prefill",
        metadata={
            "help": "prefill: before the first update, fill the queue with key-encoder passes over K/(B·R) + 100 "
            "XLCO batches drawn in an order independent of training (the reference). masked: start at step one "
            "and leave the slots not yet filled out of the softmax."
        },
    )
    xlco_normalize: bool = field(
        default=False, metadata={"help": "Cosine instead of raw dot-product logits (the reference uses raw)."}
    )
    xlco_in_batch_negatives: bool = field(
        default=False,
        metadata={
            "help": "Also use the other keys of the batch as negatives (not in the reference). They share the "
            "positive's key-encoder version, which removes the 'freshest key' shortcut of small models trained "
            "from scratch, whose key encoder moves fast (see experiments/README.md)."
        },
    )
    retrieval_eval_data: list[str] | None = field(
        default=None,
        metadata={
            "help": "Held-out parallel data (same formats as --parallel_data) for Tatoeba-style retrieval accuracy "
            "of the XLCO sentence vectors, logged as retrieval_acc/<lang> every --retrieval_eval_steps."
        },
    )
    retrieval_eval_steps: int | None = field(
        default=None, metadata={"help": "Evaluate retrieval every N updates (default: --eval_steps or 500)."}
    )
    retrieval_eval_max_pairs: int = field(
        default=200, metadata={"help": "At most this many pairs per language for retrieval evaluation."}
    )
    # The pretraining batches are nested per objective; the Trainer must pass them through untouched.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep False for InfoXLM pretraining."})
    # Worker defaults that keep a GPU fed (README "Data", docs/performance.md): loading in the main process stalls
    # every GPU step for the batch's reading and tokenizing; on a CPU the workers would take cores from the model.
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={
            "help": f"DataLoader worker processes per rank. Default: {GPU_DATALOADER_WORKERS} when training on CUDA "
            "GPUs (each reads and tokenizes its own part of the data while the GPU computes), 0 on a CPU. The "
            "number is part of the saved data position: resume with the same one."
        },
    )
    dataloader_persistent_workers: bool | None = field(
        default=None,
        metadata={"help": "Keep the DataLoader workers alive between passes. Default: true when there are workers."},
    )

    def __post_init__(self):
        if self.dataloader_num_workers is None:
            on_gpu = torch.cuda.is_available() and not self.use_cpu
            self.dataloader_num_workers = GPU_DATALOADER_WORKERS if on_gpu else 0
        if self.dataloader_persistent_workers is None:
            self.dataloader_persistent_workers = self.dataloader_num_workers > 0
        # Before transformers sets up the devices (and would import DeepSpeed or build a DataParallel setup).
        problem = unsupported_setup(self)
        if problem:
            raise ValueError(problem)
        super().__post_init__()
        # Batches are padded per rank to their own longest sequence, so rank 0 cannot read and concatenate them
        # for everyone (accelerate's default for iterable datasets): every rank collates its own shard.
        if self.accelerator_config.dispatch_batches is None:
            self.accelerator_config.dispatch_batches = False
        names = [name.strip() for name in self.objectives.split(",") if name.strip()]
        unknown = sorted(set(names) - set(OBJECTIVES))
        if unknown or not names:
            raise ValueError(f"--objectives {self.objectives!r}: expected a subset of {','.join(OBJECTIVES)}.")
        self.objective_list = [name for name in OBJECTIVES if name in names]
        if self.xlco_momentum is not None:
            MomentumSchedule.parse(self.xlco_momentum)  # fail at parse time, not at step 1
        if self.loss_normalization not in ("reference", "mean"):
            raise ValueError(f"--loss_normalization {self.loss_normalization!r}: expected 'reference' or 'mean'.")
        if self.xlco_queue_fill not in ("prefill", "masked"):
            raise ValueError(f"--xlco_queue_fill {self.xlco_queue_fill!r}: expected 'prefill' or 'masked'.")
        if self.xlco_enable_step < 0:
            raise ValueError(f"--xlco_enable_step {self.xlco_enable_step} must be >= 0.")
        if self.objective_list == ["xlco"] and self.xlco_enable_step > 0:
            raise ValueError("--xlco_enable_step > 0 with --objectives xlco alone leaves nothing to train before it.")
        if self.remove_unused_columns:
            raise ValueError("--remove_unused_columns must stay False: pretraining batches are nested per objective.")
