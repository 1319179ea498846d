"""InfoXLM pretraining: `InfoXLMTrainer`, the `XLCO` state it drives (key encoder, negative queue, loss, momentum),
its checkpoints, the data pipeline in `trainer.data`, and the retrieval callback (`trainer.retrieval_callback`,
which uses the `evaluation` package and is not imported here: `evaluation` itself imports `trainer.data`)."""

from .checkpoints import CheckpointError
from .data import (
    DataArguments,
    DataError,
    InfoXLMDataCollator,
    build_pretraining_dataset,
    format_summary,
    load_heldout_pairs,
    load_parallel_pairs,
    preparation_report,
    train_tokenizer,
    write_demo_corpus,
)
from .infoxlm_trainer import InfoXLMTrainer
from .training_args import InfoXLMTrainingArguments
from .xlco import XLCO, MomentumSchedule, xlco_loss

__all__ = [
    "CheckpointError",
    "DataArguments",
    "DataError",
    "InfoXLMDataCollator",
    "InfoXLMTrainer",
    "InfoXLMTrainingArguments",
    "MomentumSchedule",
    "XLCO",
    "build_pretraining_dataset",
    "format_summary",
    "load_heldout_pairs",
    "load_parallel_pairs",
    "preparation_report",
    "train_tokenizer",
    "write_demo_corpus",
    "xlco_loss",
]
