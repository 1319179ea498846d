"""InfoXLM pretraining: `InfoXLMTrainer` and the XLCO pieces it owns (key encoder, negative queue, loss, momentum),
retrieval evaluation, and the data pipeline in `trainer.data`."""

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
from .retrieval import (
    RetrievalEvaluationCallback,
    describe_poolings,
    evaluate_retrieval,
    evaluate_tatoeba,
    find_tatoeba_languages,
    format_retrieval_markdown,
    load_retrieval_model,
    load_tatoeba_eval,
    plot_retrieval,
    retrieval_accuracy,
    retrieval_report,
    write_retrieval_outputs,
)
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
    "describe_poolings",
    "evaluate_retrieval",
    "evaluate_tatoeba",
    "find_tatoeba_languages",
    "format_retrieval_markdown",
    "format_summary",
    "load_heldout_pairs",
    "load_parallel_pairs",
    "preparation_report",
    "load_retrieval_model",
    "load_tatoeba_eval",
    "plot_retrieval",
    "retrieval_accuracy",
    "retrieval_report",
    "train_tokenizer",
    "write_demo_corpus",
    "write_retrieval_outputs",
    "xlco_loss",
]
