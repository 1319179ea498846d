"""The pretraining data pipeline: raw text in, collated MLM / TLM / XLCO batches out, resumable at any step.

sources.py, hf_sources.py   read local files and 🤗 datasets as text, with file/line errors on bad input
tokenized_cache.py          tokenize map-style sources once (a 🤗 Arrow cache shared by every run)
sampling.py                 language sampling p ∝ n^α and the seeded random streams
layouts.py                  the MLM block, TLM pair and XLCO mixup layouts (the reference's formats)
streams.py                  per-language and per-objective example streams that save and restore their position
dataset.py                  `PretrainingDataset` (a stateful IterableDataset) and its summary table
collator.py                 masking and padding into tensors; seeded_collator.py makes it reproducible
arguments.py                `DataArguments` for the command line
demo_corpus.py              the built-in CLDR demo corpus; tokenizer_training.py a small BPE for from-scratch runs
"""

from .arguments import DataArguments
from .collator import InfoXLMDataCollator
from .dataset import (
    DATA_STATE_VERSION,
    PretrainingDataset,
    build_pretraining_dataset,
    data_state_differences,
    data_state_version_error,
    format_summary,
    load_heldout_pairs,
    load_parallel_pairs,
    preparation_report,
)
from .demo_corpus import write_demo_corpus
from .errors import DataError
from .seeded_collator import SeededCollator
from .tokenizer_training import train_tokenizer

__all__ = [
    "DATA_STATE_VERSION",
    "DataArguments",
    "DataError",
    "InfoXLMDataCollator",
    "PretrainingDataset",
    "SeededCollator",
    "build_pretraining_dataset",
    "data_state_differences",
    "data_state_version_error",
    "format_summary",
    "load_heldout_pairs",
    "load_parallel_pairs",
    "preparation_report",
    "train_tokenizer",
    "write_demo_corpus",
]
