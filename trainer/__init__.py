"""InfoXLM pretraining: the data pipeline (corpora, sampling, layouts, collator) and `InfoXLMTrainer`."""

from .cldr_corpus import write_demo_corpus
from .collators import InfoXLMDataCollator
from .data_arguments import DataArguments
from .data_errors import DataError
from .infoxlm_trainer import CheckpointError, InfoXLMTrainer
from .key_encoder import KeyEncoder
from .momentum import MomentumSchedule
from .negative_queue import NegativeQueue
from .pretraining_data import build_pretraining_dataset, format_summary, load_heldout_pairs, load_parallel_pairs
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
from .tokenizer_training import train_tokenizer
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
