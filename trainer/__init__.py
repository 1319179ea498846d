"""InfoXLM pretraining: `InfoXLMTrainer` and the XLCO pieces it owns (key encoder, negative queue, loss, momentum),
the retrieval callback (its evaluation is in the `evaluation` package), and the data pipeline in `trainer.data`."""

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
from .retrieval_callback import RetrievalEvaluationCallback
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
    "RetrievalEvaluationCallback",
    "build_pretraining_dataset",
    "format_summary",
    "load_heldout_pairs",
    "load_parallel_pairs",
    "preparation_report",
    "train_tokenizer",
    "write_demo_corpus",
    "xlco_loss",
]
