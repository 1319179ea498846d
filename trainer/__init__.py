"""InfoXLM pretraining: `InfoXLMTrainer` and the XLCO pieces it owns (key encoder, negative queue, loss, momentum),
the data pipeline in `trainer.data`, and the retrieval callback (`trainer.retrieval_callback`, which uses the
`evaluation` package and is not imported here: `evaluation` itself imports `trainer.data`)."""

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
from .infoxlm_trainer import CheckpointError, InfoXLMTrainer
from .key_encoder import KeyEncoder
from .momentum import MomentumSchedule
from .negative_queue import NegativeQueue
from .training_args import InfoXLMTrainingArguments
from .xlco_loss import xlco_loss

__all__ = [
    "CheckpointError",
    "DataArguments",
    "DataError",
    "InfoXLMDataCollator",
    "InfoXLMTrainer",
    "InfoXLMTrainingArguments",
    "KeyEncoder",
    "MomentumSchedule",
    "NegativeQueue",
    "build_pretraining_dataset",
    "format_summary",
    "load_heldout_pairs",
    "load_parallel_pairs",
    "preparation_report",
    "train_tokenizer",
    "write_demo_corpus",
    "xlco_loss",
]
