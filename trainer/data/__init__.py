"""The pretraining data pipeline: raw text in, collated MLM / TLM / XLCO batches out, resumable at any step.

sources.py, hf_sources.py   read local files and 🤗 datasets as text; `DataError` names file/line and fix on bad input
corpora.py                  find the corpora a run names (files, folders, globs, 🤗 datasets); their held-out pairs
tokenized_cache.py          tokenize map-style sources once (a 🤗 Arrow cache shared by every run)
layouts.py                  the MLM block, TLM pair and XLCO mixup layouts (the reference's formats)
streams.py                  per-language and per-objective example streams that save and restore their position;
                            language sampling p ∝ n^α and the seeded random streams
dataset.py                  `PretrainingDataset` (a stateful IterableDataset) and the version of its saved position
assembly.py                 `build_pretraining_dataset`: corpora, tokenized or streamed, into one dataset
summary.py                  the summary table of the data (`format_summary`) and the preparation report
collator.py                 masking and padding into tensors; `SeededCollator` makes it reproducible
arguments.py                `DataArguments` for the command line
cldr.py, demo_corpus.py     the built-in CLDR demo corpus; a small BPE tokenizer for from-scratch runs

Other packages import from here, not from the modules.
"""

from .arguments import DataArguments
from .assembly import build_pretraining_dataset
from .collator import InfoXLMDataCollator, SeededCollator
from .corpora import Corpora, find_mono_corpora, find_parallel_corpora, load_heldout_pairs, load_parallel_pairs
from .dataset import DATA_STATE_VERSION, PretrainingDataset, data_state_differences, data_state_version_error
from .demo_corpus import SPECIAL_TOKENS, train_tokenizer, write_demo_corpus, xlmr_style_tokenizer
from .sources import DataError
from .summary import format_summary, preparation_report

__all__ = [
    "DATA_STATE_VERSION",
    "SPECIAL_TOKENS",
    "Corpora",
    "DataArguments",
    "DataError",
    "InfoXLMDataCollator",
    "PretrainingDataset",
    "SeededCollator",
    "build_pretraining_dataset",
    "data_state_differences",
    "data_state_version_error",
    "find_mono_corpora",
    "find_parallel_corpora",
    "format_summary",
    "load_heldout_pairs",
    "load_parallel_pairs",
    "preparation_report",
    "train_tokenizer",
    "write_demo_corpus",
    "xlmr_style_tokenizer",
]
