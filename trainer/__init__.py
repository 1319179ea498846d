"""InfoXLM pretraining: `InfoXLMTrainer`, the `XLCO` state it drives (key encoder, negative queue, loss, momentum),
its checkpoints, retrieval evaluation, and the data pipeline in `trainer.data`."""

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
from .xlco import XLCO, MomentumSchedule, xlco_loss

__all__ = [
    "CheckpointError",
    "DataArguments",
    "DataError",
    "InfoXLMDataCollator",
    "InfoXLMTrainer",
    "InfoXLMTrainingArguments",
    "MomentumSchedule",
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
    "XLCO",
    "xlco_loss",
]
