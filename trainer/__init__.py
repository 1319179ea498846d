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
from .retrieval import RetrievalEvaluationCallback, evaluate_retrieval, retrieval_accuracy
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
    "evaluate_retrieval",
    "format_summary",
    "load_heldout_pairs",
    "load_parallel_pairs",
    "retrieval_accuracy",
    "train_tokenizer",
    "write_demo_corpus",
    "xlco_loss",
]
