#!/usr/bin/env python
"""
Zero-shot cross-lingual XNLI: fine-tune a multilingual encoder on English NLI, evaluate it on every language.

Works with InfoXLM checkpoints (model type `infoxlm`, as `run_pretrain.py` writes them) and with any checkpoint that
`AutoModelForSequenceClassification` can load: xlm-roberta-base, microsoft/infoxlm-base, mBERT-style models.

The protocol is the one of the XLM-R and InfoXLM papers: train on English (MultiNLI), select the checkpoint on the
English dev set only, report accuracy on the test set of every language. Target-language data is never used for
model selection unless `--select_on all_dev` asks for it (the translate-train style of comparison).

Data comes from the Hub (`--dataset_name xnli`: train = the `en` config's train split, selection = English
validation, test = each language's test split) or from local files:

    python run_xnli.py --model_name_or_path microsoft/infoxlm-base --dataset_name xnli \
        --do_train --do_predict --output_dir outputs/xnli

    python run_xnli.py --model_name_or_path outputs/pretrain --train_file data/multinli.train.en.tsv \
        --validation_files en=data/en.dev.tsv --test_files data/xnli/ --languages en sw \
        --do_train --do_predict --output_dir outputs/xnli

Local files are TSV (read without quoting, like the XNLI release), CSV or JSON Lines with the columns `premise`,
`hypothesis` and `label` (XNLI 1.0's `sentence1`, `sentence2` and `gold_label` are accepted too); labels are names or
ids into `--label_list`. `--test_files`/`--validation_files` take `lang=path` items, a directory of
`<lang>.test.tsv` / `<lang>.dev.tsv` files, or a file with a `language` column (XNLI 1.0's `xnli.test.tsv`).

LoRA (`--lora_r 8`) trains adapters on the attention projections and the classifier head; the run saves the adapter
(`lora_adapter/`) and a merged model (the top of `output_dir`), which loads without peft.

The run writes to `output_dir`: `xnli_results.json` (every number and the settings), `xnli_accuracy.png` (bar chart
of per-language accuracy), `predictions/<lang>.<split>.tsv`, a model card `README.md` holding the Markdown table
that is also printed, and the model. A single `.json` or `.yaml` argument is read as a config file instead of flags.

Bad input (unknown labels, missing columns, empty files, a requested language the data lacks) stops the run before
anything is written, with an `XNLIInputError` naming the file, line, column or language and the fix.
"""

import contextlib
import csv
import json
import logging
import os
import platform
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

import datasets
import numpy as np
import peft
import torch
import transformers
from babel import Locale, UnknownLocaleError
from datasets import ClassLabel, Dataset, Features, Value
from huggingface_hub import HfApi, ModelCardData
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EvalPrediction,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

import modeling_infoxlm  # noqa: F401  (registers the infoxlm model type with the Auto classes)
from infoxlm_cli import (
    ConfigError,
    argument_parser,
    check_tokenizer_folder,
    check_training_arguments,
    parse_arguments,
    require_own_trainer_package,
    run_cli,
    usable_positions,
)

require_own_trainer_package()  # before `import trainer`: Coqui's `trainer` on PyPI has the same name

from trainer.checkpoints import CheckpointError, resolve_resume_checkpoint  # noqa: E402
from trainer.metrics import load_metric  # noqa: E402
from trainer.output_folder import (  # noqa: E402
    TRAINING_RUN_FILES,
    OutputFolderError,
    RunOutputs,
    check_output_folder,
    remove_previous_run,
)

logger = logging.getLogger(__name__)

# The 15 XNLI languages, in the order of the XNLI paper's tables.
XNLI_LANGUAGES = ["en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur"]
# Label ids of the 🤗 `xnli` dataset (and of MultiNLI in GLUE).
XNLI_LABELS = ["entailment", "neutral", "contradiction"]
# Accepted column names, canonical name first: the 🤗 `xnli` names, XNLI 1.0 / MultiNLI names, XNLI-MT's `hypo`.
COLUMN_ALIASES = {
    "premise": ("premise", "sentence1"),
    "hypothesis": ("hypothesis", "sentence2", "hypo"),
    "label": ("label", "gold_label"),
}
# XNLI-MT 1.0's machine-translated train files spell this label differently.
LABEL_ALIASES = {"contradictory": "contradiction"}
# MultiNLI/SNLI mark pairs without annotator consensus with "-"; the original recipes drop them.
NO_GOLD_LABEL = "-"
# File name stems that identify a split inside a directory of per-language files (`en.dev.tsv`, `sw.test.jsonl`).
SPLIT_STEMS = {"validation": ("dev", "validation", "valid"), "test": ("test",)}
DATA_EXTENSIONS = (".tsv", ".csv", ".jsonl", ".json")

RESULTS_FILE = "xnli_results.json"
CHART_FILE = "xnli_accuracy.png"
PREDICTIONS_DIR = "predictions"
ADAPTER_DIR = "lora_adapter"
# What a run writes to output_dir, i.e. what a previous run left there (trainer/output_folder.py).
XNLI_OUTPUTS = RunOutputs(
    files=(
        *TRAINING_RUN_FILES,
        RESULTS_FILE,
        CHART_FILE,
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
        "sentencepiece.bpe.model",
        "special_tokens_map.json",
    ),
    folders=(PREDICTIONS_DIR, ADAPTER_DIR, "runs"),
)


class XNLIInputError(ValueError):
    """Bad data or arguments. The message names where the problem is (file, line, column or option) and the fix."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ):
        self.problem, self.source, self.line, self.column, self.fix = problem, source, line, column, fix
        where = [source] if source else []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        message = f"{', '.join(where)}: {problem}" if where else problem
        if fix:
            message += f". Fix: {fix}."
        super().__init__(message)


@dataclass
class ModelArguments:
    """Which model, config and tokenizer to fine-tune from."""

    model_name_or_path: str = field(
        metadata={"help": "Checkpoint to fine-tune or evaluate: a Hub model id or a local directory."}
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name or path, if not the model's."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer name or path, if not the model's."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store files downloaded from the Hub."})
    model_revision: str = field(default="main", metadata={"help": "Model version: branch, tag or commit id."})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models and datasets."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom model code from the Hub (not needed for infoxlm)."}
    )


@dataclass
class DataTrainingArguments:
    """What data to train, select and test on, and how to preprocess it."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset with one config per language, e.g. `xnli` (or `facebook/xnli`)."},
    )
    train_file: str | None = field(default=None, metadata={"help": "Local training file (.tsv, .csv or .jsonl)."})
    validation_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "Local dev sets: `lang=path` items, a directory of `<lang>.dev.<ext>` files, or a file with a "
            "`language` column.",
            "aliases": ["--dev_files"],
        },
    )
    test_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "Local test sets: `lang=path` items, a directory of `<lang>.test.<ext>` files, or a file with a "
            "`language` column."
        },
    )
    languages: list[str] | None = field(
        default=None,
        metadata={
            "help": "Languages to evaluate (space- or comma-separated). Default: the 15 XNLI languages with "
            "--dataset_name, every language of the local files otherwise."
        },
    )
    train_language: str = field(
        default="en",
        metadata={"help": "Language of the training data: its Hub config, and the dev set used for selection."},
    )
    select_on: Literal["source_dev", "all_dev"] = field(
        default="source_dev",
        metadata={
            "help": "Dev data for model selection. `source_dev` (zero-shot): the train language's dev set only. "
            "`all_dev` (translate-train style): mean accuracy over every language's dev set."
        },
    )
    label_list: list[str] = field(
        default_factory=lambda: list(XNLI_LABELS),
        metadata={"help": "Label names in id order; numeric labels in the data are ids into this list."},
    )
    max_seq_length: int = field(
        default=128, metadata={"help": "Maximum tokens per premise-hypothesis pair; longer pairs are truncated."}
    )
    pad_to_max_length: bool = field(
        default=False,
        metadata={"help": "Pad every pair to max_seq_length (else pad each batch to its longest pair)."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training examples (debugging, quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N examples of each dev set."}
    )
    max_predict_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N examples of each test set."}
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})

    def __post_init__(self):
        if self.languages is not None:
            self.languages = [lang for item in self.languages for lang in item.split(",") if lang]
        if self.select_on not in ("source_dev", "all_dev"):
            raise XNLIInputError(
                f"unknown value {self.select_on!r}",
                source="--select_on",
                fix="use `source_dev` (zero-shot protocol) or `all_dev` (translate-train style)",
            )
        if self.dataset_name is not None and (self.train_file or self.validation_files or self.test_files):
            raise XNLIInputError(
                "both a Hub dataset and local files were given",
                source="--dataset_name",
                fix="pass either --dataset_name or --train_file/--validation_files/--test_files",
            )
        if len(set(self.label_list)) != len(self.label_list):
            raise XNLIInputError(f"duplicate names in {self.label_list}", source="--label_list")


@dataclass
class LoraArguments:
    """Parameter-efficient fine-tuning with LoRA (off unless --lora_r is set)."""

    lora_r: int | None = field(default=None, metadata={"help": "LoRA rank; setting it turns LoRA on."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: list[str] = field(
        # peft has no default for the `infoxlm` model type; these are XLM-R/BERT's attention projections.
        default_factory=lambda: ["query", "value"],
        metadata={"help": "Names of the linear layers that get adapters."},
    )

    def __post_init__(self):
        if self.lora_r is not None and self.lora_r <= 0:
            raise XNLIInputError(f"must be a positive rank, got {self.lora_r}", source="--lora_r")


@dataclass
class XNLITrainingArguments(TrainingArguments):
    """
    `TrainingArguments` whose defaults implement the zero-shot protocol: evaluate on the selection dev set after
    every epoch and keep the best checkpoint by accuracy. `--eval_strategy no` trains without selection.
    """

    eval_strategy: IntervalStrategy | str = field(
        default="epoch", metadata={"help": "When to evaluate on the selection dev set (`no`, `steps`, `epoch`)."}
    )
    save_strategy: SaveStrategy | str = field(
        default="epoch", metadata={"help": "When to save checkpoints (`no`, `steps`, `epoch`, `best`)."}
    )
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Keep the checkpoint that scores best on the selection dev set."}
    )
    metric_for_best_model: str | None = field(
        default="accuracy", metadata={"help": "Selection metric (`accuracy`, `macro_f1` or `loss`)."}
    )
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints to keep besides the best one."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace the run already in --output_dir (its model, checkpoints, results and predictions are "
            "deleted once every check has passed). Without it (or --resume_from_checkpoint) such a folder is refused."
        },
    )

    def __post_init__(self):
        if not self.do_train:
            # Evaluating during training only serves selection; runs that do not train evaluate via --do_eval.
            self.eval_strategy = "no"
        if self.eval_strategy == "no" or self.save_strategy == "no":
            # Nothing to select on (or no checkpoints to select from): `--eval_strategy no` is a one-flag opt-out.
            self.load_best_model_at_end = False
        super().__post_init__()


# ----------------------------------------------------------------------------------------------------------------
# Local files
# ----------------------------------------------------------------------------------------------------------------


def _resolve_columns(available: list[str], path: str, line: int | None) -> dict[str, str]:
    """Maps each canonical column to the name the file uses for it, or raises naming the missing one."""
    resolved = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        name = next((alias for alias in aliases if alias in available), None)
        if name is None:
            raise XNLIInputError(
                f"no {canonical!r} column (found: {', '.join(available) or 'none'})",
                source=path,
                line=line,
                column=canonical,
                fix=f"name the column one of: {', '.join(aliases)}",
            )
        resolved[canonical] = name
    return resolved


def _iter_records(path: str) -> Iterator[tuple[int, dict]]:
    """Yields `(line number, record)` for every example of a TSV, CSV or JSON Lines file, checking its shape."""
    extension = os.path.splitext(path)[1].lower()
    with open(path, encoding="utf-8-sig", newline="") as f:
        if extension in (".jsonl", ".json"):
            for line_number, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as err:
                    raise XNLIInputError(
                        f"invalid JSON ({err.msg})",
                        source=path,
                        line=line_number,
                        fix="write one JSON object per line",
                    ) from None
                if not isinstance(record, dict):
                    raise XNLIInputError(
                        "not a JSON object", source=path, line=line_number, fix="write one JSON object per line"
                    )
                yield line_number, record
            return
        # XNLI's TSV files contain unbalanced quotes, so TSV is read without quoting; CSV needs quoting for commas.
        if extension == ".tsv":
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise XNLIInputError("the file is empty", source=path, fix="add a header line and examples")
        _resolve_columns(header, path, line=1)  # a missing column is reported even when no row follows
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise XNLIInputError(
                    f"expected {len(header)} fields like the header, found {len(row)}",
                    source=path,
                    line=reader.line_num,
                    fix="TSV files are read without quoting: remove tab characters from the text, or use .jsonl"
                    if extension == ".tsv"
                    else "quote fields that contain commas",
                )
            yield reader.line_num, dict(zip(header, row))


def parse_label(value, label2id: dict[str, int], *, source: str, line: int | None, column: str) -> int | None:
    """Label name (case-insensitive) or id -> id; `None` for MultiNLI's no-consensus marker "-"."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is not None:
        if text.isdigit() and int(text) < len(label2id):
            return int(text)
        if text == NO_GOLD_LABEL:
            return None
        name = LABEL_ALIASES.get(text.lower(), text.lower())
        if name in label2id:
            return label2id[name]
    names = ", ".join(f"{i}={name}" for name, i in label2id.items())
    raise XNLIInputError(
        "missing label" if value is None else f"unknown label {value!r}",
        source=source,
        line=line,
        column=column,
        fix=f"use one of the label names or ids ({names}), or declare your names with --label_list",
    )


def read_nli_file(path: str, label_list: list[str]) -> dict[str, list]:
    """
    Reads one local NLI file into columns `premise`, `hypothesis`, `label` (ids into `label_list`) and, when the file
    has one, `language`. Raises `XNLIInputError` naming the file, line and column of the first problem.
    """
    if not os.path.isfile(path):
        raise XNLIInputError("no such file", source=path, fix="check the path")
    if os.path.splitext(path)[1].lower() not in DATA_EXTENSIONS:
        raise XNLIInputError(
            "unsupported file type", source=path, fix=f"use one of: {', '.join(DATA_EXTENSIONS)} (tab-separated .tsv)"
        )
    label2id = {name.lower(): i for i, name in enumerate(label_list)}
    columns = {"premise": [], "hypothesis": [], "label": [], "language": []}
    names, skipped = None, 0
    for line_number, record in _iter_records(path):
        # Every row of a TSV/CSV file has the header's columns; JSON Lines records are checked value by value.
        names = names or _resolve_columns(list(record), path, line_number)
        premise, hypothesis = record.get(names["premise"]), record.get(names["hypothesis"])
        for column, value in ((names["premise"], premise), (names["hypothesis"], hypothesis)):
            if not isinstance(value, str):
                raise XNLIInputError(
                    "missing or non-text value",
                    source=path,
                    line=line_number,
                    column=column,
                    fix="give every example a premise and a hypothesis string",
                )
        value = record.get(names["label"])
        label = parse_label(value, label2id, source=path, line=line_number, column=names["label"])
        if label is None:
            skipped += 1
            continue
        columns["premise"].append(premise)
        columns["hypothesis"].append(hypothesis)
        columns["label"].append(label)
        columns["language"].append(record.get("language"))
    if not columns["label"]:
        raise XNLIInputError(
            "the file has no examples" + (f" ({skipped} without a gold label)" if skipped else ""),
            source=path,
            fix="add examples",
        )
    if skipped:
        logger.warning(f"{path}: skipped {skipped} examples whose gold label is {NO_GOLD_LABEL!r} (no consensus).")
    if all(language is None for language in columns["language"]):
        del columns["language"]
    return columns


def nli_features(label_list: list[str]) -> Features:
    """The canonical columns; the ClassLabel feature carries the label names."""
    return Features({"premise": Value("string"), "hypothesis": Value("string"), "label": ClassLabel(names=label_list)})


def make_dataset(columns: dict[str, list], label_list: list[str]) -> Dataset:
    """In-memory dataset of the canonical columns of `read_nli_file`'s output."""
    features = nli_features(label_list)
    return Dataset.from_dict({name: columns[name] for name in features}, features=features)


def _language_files_in_directory(directory: str, split: str, option: str) -> dict[str, str]:
    """`<lang>.<stem>.<ext>` files of a directory, e.g. `sw.test.tsv`, for the stems of `split`."""
    found = {}
    for filename in sorted(os.listdir(directory)):
        parts = filename.split(".")
        if len(parts) == 3 and parts[1] in SPLIT_STEMS[split] and f".{parts[2]}" in DATA_EXTENSIONS:
            found.setdefault(parts[0], os.path.join(directory, filename))
    if not found:
        stems = "/".join(SPLIT_STEMS[split])
        raise XNLIInputError(
            f"no per-language {split} files in the directory",
            source=f"{option} {directory}",
            fix=f"name them `<lang>.{stems.split('/')[0]}.tsv` (stems: {stems}; extensions: "
            f"{', '.join(DATA_EXTENSIONS)}), or pass `lang=path` items",
        )
    return found


def load_local_split(
    specs: list[str], split: str, option: str, label_list: list[str], languages: list[str] | None
) -> dict[str, Dataset]:
    """
    Reads the per-language files of one split. Each spec is `lang=path`, a directory of `<lang>.<split>.<ext>` files,
    or a file with a `language` column. Languages outside `languages` (when given) are not read.
    """
    columns_by_language: dict[str, dict[str, list]] = {}

    def add(language: str, columns: dict[str, list], source: str):
        if language in columns_by_language:
            raise XNLIInputError(
                f"language {language!r} is given twice", source=f"{option} {source}", fix="give one file per language"
            )
        columns_by_language[language] = columns

    for spec in specs:
        if os.path.isdir(spec):
            for language, path in _language_files_in_directory(spec, split, option).items():
                if languages is None or language in languages:
                    add(language, read_nli_file(path, label_list), path)
        elif "=" in spec and not os.path.exists(spec):
            language, path = spec.split("=", 1)
            if not language:
                raise XNLIInputError(f"no language before '=' in {spec!r}", source=option, fix="write `lang=path`")
            if languages is None or language in languages:
                add(language, read_nli_file(path, label_list), path)
        elif os.path.isfile(spec):
            columns = read_nli_file(spec, label_list)
            if "language" not in columns:
                raise XNLIInputError(
                    "cannot tell the language of this file: no `lang=` prefix and no 'language' column",
                    source=f"{option} {spec}",
                    fix=f"write `{option} <lang>={spec}`",
                )
            for language in dict.fromkeys(columns["language"]):
                if languages is None or language in languages:
                    rows = [i for i, row_language in enumerate(columns["language"]) if row_language == language]
                    add(language, {name: [values[i] for i in rows] for name, values in columns.items()}, spec)
        else:
            raise XNLIInputError(
                "no such file or directory", source=f"{option} {spec}", fix="pass `lang=path`, a directory or a file"
            )
    return {language: make_dataset(columns, label_list) for language, columns in columns_by_language.items()}


# ----------------------------------------------------------------------------------------------------------------
# Hub datasets
# ----------------------------------------------------------------------------------------------------------------


def standardize_hub_split(dataset: Dataset, source: str, label_list: list[str]) -> Dataset:
    """Hub split -> canonical columns with labels mapped by name onto `label_list` (the Hub's order may differ)."""
    names = _resolve_columns(list(dataset.column_names), source, line=None)
    if len(dataset) == 0:
        raise XNLIInputError("the split is empty", source=source, fix="check the dataset name and config")
    feature = dataset.features[names["label"]]
    hub_names = feature.names if isinstance(feature, ClassLabel) else None
    label2id = {name.lower(): i for i, name in enumerate(label_list)}

    def to_ids(batch):
        ids = []
        for value in batch[names["label"]]:
            # A ClassLabel's ids are the Hub's own; out-of-range ones (-1: unlabelled) fail in parse_label.
            name = hub_names[value] if hub_names and 0 <= value < len(hub_names) else value
            label = parse_label(name, label2id, source=source, line=None, column=names["label"])
            if label is None:
                raise XNLIInputError("an example has no gold label", source=source, column=names["label"])
            ids.append(label)
        return {"premise": batch[names["premise"]], "hypothesis": batch[names["hypothesis"]], "label": ids}

    return dataset.map(
        to_ids,
        batched=True,
        remove_columns=dataset.column_names,
        features=nli_features(label_list),
        desc=f"Reading {source}",
    )


def load_hub_splits(
    data_args: DataTrainingArguments, model_args: ModelArguments, need: dict[str, list[str]]
) -> dict[str, dict[str, Dataset]]:
    """
    Loads `need[split]` languages of each split from a Hub dataset with one config per language: train comes from
    the train language's `train` split, dev and test from each language's `validation` and `test` splits.
    `datasets.load_dataset` is called once per language config.
    """
    name = data_args.dataset_name
    configs: dict[str, datasets.DatasetDict] = {}
    loaded: dict[str, dict[str, Dataset]] = {}
    for split, languages in need.items():
        loaded[split] = {}
        for language in languages:
            if language not in configs:
                try:
                    configs[language] = datasets.load_dataset(
                        name, language, cache_dir=model_args.cache_dir, token=model_args.token
                    )
                except ValueError as err:  # `datasets` reports an unknown config as a ValueError
                    raise XNLIInputError(
                        f"cannot load language {language!r}: {err}",
                        source=f"--dataset_name {name}",
                        fix="pick languages the dataset has with --languages",
                    ) from err
            if split not in configs[language]:
                raise XNLIInputError(
                    f"language {language!r} has no {split!r} split (it has: {', '.join(configs[language])})",
                    source=f"--dataset_name {name}",
                )
            source = f"{name}/{language} [{split}]"
            loaded[split][language] = standardize_hub_split(configs[language][split], source, data_args.label_list)
    return loaded


# ----------------------------------------------------------------------------------------------------------------
# Metrics and reporting
# ----------------------------------------------------------------------------------------------------------------


def classification_metrics(predictions: np.ndarray, labels: np.ndarray, label_list: list[str]) -> dict:
    """
    Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows: gold, columns: predicted),
    from the `nli_classification` evaluate module (trainer/metrics/).
    """
    return load_metric("nli_classification").compute(
        predictions=np.asarray(predictions).tolist(), references=np.asarray(labels).tolist(), label_names=label_list
    )


def language_name(code: str) -> str:
    """English name of a language code ("sw" -> "Swahili"); the code itself when babel does not know it."""
    try:
        return Locale.parse(code.replace("-", "_")).english_name or code
    except (ValueError, TypeError, UnknownLocaleError):
        return code


def summarize(results: dict[str, dict], source_language: str) -> dict[str, dict]:
    """Mean accuracy and macro-F1 per split over all languages, and over the target (non-source) languages."""
    averages = {}
    for split in ("dev", "test"):
        for group, include in (("all", lambda lang: True), ("zero_shot", lambda lang: lang != source_language)):
            scores = [r[split] for lang, r in results.items() if split in r and include(lang)]
            if scores:
                averages.setdefault(split, {})[group] = {
                    "accuracy": float(np.mean([s["accuracy"] for s in scores])),
                    "macro_f1": float(np.mean([s["macro_f1"] for s in scores])),
                    "languages": len(scores),
                }
    return averages


def results_table(results: dict[str, dict], averages: dict[str, dict], source_language: str) -> str:
    """Markdown table: one row per language with accuracy and macro-F1 (in %) and size per split, then averages."""
    splits = [split for split in ("test", "dev") if split in averages]
    header = ["Language"] + [f"{split.capitalize()} {name}" for split in splits for name in ("acc", "macro-F1", "n")]

    def cells(scores: dict[str, dict | None]) -> list[str]:
        row = []
        for split in splits:
            if scores.get(split):
                row += [f"{100 * scores[split]['accuracy']:.1f}", f"{100 * scores[split]['macro_f1']:.1f}"]
                row.append(str(scores[split].get("examples", "")))
            else:
                row += ["–"] * 3
        return row

    rows = []
    for language, scores in results.items():
        name = f"{language} ({language_name(language)})" + (" — train language" if language == source_language else "")
        rows.append([name] + cells(scores))
    rows.append(["**Average**"] + cells({split: averages[split].get("all") for split in splits}))
    if source_language in results and len(results) > 1:
        name = f"**Average without {source_language}** (zero-shot)"
        rows.append([name] + cells({split: averages[split].get("zero_shot") for split in splits}))
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path that replaces `path` only once writing succeeded, so no file is ever half-written."""
    temporary = f"{path}.tmp"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path: str, text: str):
    """Writes a UTF-8 text file atomically."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.write(text)


def accuracy_figure(
    results: dict[str, dict], averages: dict, source_language: str, num_labels: int, title: str
) -> Figure:
    """Bar chart of per-language test accuracy (dev when there is no test set), with the average and chance level."""
    split = "test" if "test" in averages else "dev"
    languages = [lang for lang, scores in results.items() if split in scores]
    accuracies = [100 * results[lang][split]["accuracy"] for lang in languages]
    figure = Figure(figsize=(max(4.0, 0.6 * len(languages) + 2), 4), layout="constrained")
    FigureCanvasAgg(figure)  # render with Agg: no display, no global pyplot state
    axes = figure.subplots()
    colors = ["tab:orange" if lang == source_language else "tab:blue" for lang in languages]
    bars = axes.bar(languages, accuracies, color=colors, zorder=2)
    average = 100 * averages[split]["all"]["accuracy"]
    lines = [
        axes.axhline(average, color="black", linestyle="--", linewidth=1, zorder=1, label=f"average {average:.1f}"),
        axes.axhline(100 / num_labels, color="gray", linestyle=":", linewidth=1, zorder=1, label="chance"),
    ]
    # On a white box above the lines: a bar that ends near the average line keeps a readable value.
    axes.bar_label(
        bars,
        fmt="%.1f",
        fontsize=8,
        zorder=3,
        bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"},
    )
    handles = []
    if source_language in languages:
        handles.append(Patch(color="tab:orange", label=f"{source_language} (training language)"))
    if any(lang != source_language for lang in languages):
        handles.append(Patch(color="tab:blue", label="zero-shot"))
    axes.set_ylim(0, 100)
    axes.set_ylabel(f"{split} accuracy (%)")
    axes.set_title(title, fontsize=10)
    axes.legend(handles=handles + lines, loc="lower right", fontsize=8)
    return figure


def plot_accuracy(
    results: dict[str, dict], averages: dict, source_language: str, num_labels: int, title: str, path: str
):
    """Writes `accuracy_figure` as a PNG, atomically."""
    figure = accuracy_figure(results, averages, source_language, num_labels, title)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)


def write_predictions(path: str, raw: Dataset, logits: np.ndarray, label_list: list[str]):
    """One row per example: the text, gold and predicted label names, and the predicted probability of each label."""
    probabilities = torch.softmax(torch.from_numpy(logits).float(), dim=-1).numpy()
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "premise", "hypothesis", "label", "prediction"] + [f"p_{n}" for n in label_list])
        for i, (example, probs) in enumerate(zip(raw, probabilities)):
            row = [i, example["premise"], example["hypothesis"], label_list[example["label"]]]
            writer.writerow(row + [label_list[int(probs.argmax())]] + [f"{p:.4f}" for p in probs])


def model_card(
    model_args: ModelArguments,
    data_args: DataTrainingArguments,
    lora_args: LoraArguments,
    model_type: str,
    report: dict,
) -> str:
    """Model card (README.md) with the results table, the protocol and how to load the model."""
    settings, selection = report["settings"], report["selection"]
    card_data = ModelCardData(
        language=settings["languages"],
        tags=["xnli", "natural-language-inference", "cross-lingual"] + (["lora"] if lora_args.lora_r else []),
        pipeline_tag="text-classification",
        metrics=["accuracy", "f1"],
        datasets=[data_args.dataset_name] if data_args.dataset_name else None,
        # Local paths mean nothing on the Hub.
        base_model=None if os.path.isdir(model_args.model_name_or_path) else model_args.model_name_or_path,
    )
    source = f"{language_name(data_args.train_language)} ({data_args.train_language})"
    protocol = f"Fine-tuned on {source} NLI data"
    if selection["enabled"] and data_args.select_on == "source_dev":
        protocol += f"; the checkpoint was selected on the {source} dev set only (zero-shot cross-lingual transfer)."
    elif selection["enabled"]:
        protocol += (
            "; the checkpoint was selected on the mean dev accuracy over all languages (translate-train style)."
        )
    else:
        protocol += "; no checkpoint selection (the model after the last training step)."
    if lora_args.lora_r:
        protocol += (
            f" Trained with LoRA (r={lora_args.lora_r}, alpha={lora_args.lora_alpha}, on "
            f"{', '.join(lora_args.lora_target_modules)} and the classifier); the weights here are merged, the "
            f"adapter is in `{ADAPTER_DIR}/`."
        )
    labels = ", ".join(f"{i} = {name}" for i, name in enumerate(data_args.label_list))
    # The code of model type `infoxlm` is saved next to the weights (auto_map), so the Hub can load it without us;
    # AutoTokenizer reads that config too, and would stop at a "run custom code?" prompt without the flag.
    remote_code = ", trust_remote_code=True" if model_type == "infoxlm" else ""
    return (
        f"---\n{card_data.to_yaml()}\n---\n\n"
        f"# XNLI classifier fine-tuned from `{model_args.model_name_or_path}`\n\n{protocol}\n\n"
        f"## Results\n\nAccuracy and macro-F1 in %.\n\n{report['table']}\n\n"
        f"Labels: {labels}. Every number and the run's settings are in `{RESULTS_FILE}`.\n\n"
        "## Usage\n\n```python\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("<this repo>"{remote_code})\n'
        f'model = AutoModelForSequenceClassification.from_pretrained("<this repo>"{remote_code})\n'
        'logits = model(**tokenizer("A premise.", "A hypothesis.", return_tensors="pt")).logits\n```\n'
    )


class XNLITrainer(Trainer):
    """
    `Trainer` that, when it evaluates several languages at once (`--select_on all_dev`), also reports the mean of
    each metric over languages as `eval_accuracy` etc., the selection metric of the translate-train protocol.
    """

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        per_language = eval_dataset if eval_dataset is not None else self.eval_dataset
        metrics = super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if isinstance(per_language, dict):
            means = {
                f"{metric_key_prefix}_{name}": float(
                    np.mean([metrics[f"{metric_key_prefix}_{lang}_{name}"] for lang in per_language])
                )
                for name in ("accuracy", "macro_f1", "loss")
            }
            metrics.update(means)
            self.log(means)
        return metrics


def load_data(
    model_args: ModelArguments, data_args: DataTrainingArguments, training_args: XNLITrainingArguments, selects: bool
) -> tuple[Dataset | None, dict[str, Dataset], dict[str, Dataset], list[str]]:
    """
    Reads and checks all the data the run needs: `(train, dev sets, test sets, languages)`, the sets keyed by
    language. Raises `XNLIInputError` for bad data and for a language the run needs but the data lacks.
    """
    source_language, label_list = data_args.train_language, data_args.label_list
    if data_args.dataset_name is not None:
        languages = data_args.languages or list(XNLI_LANGUAGES)
        if data_args.dataset_name.split("/")[-1] == "xnli":
            unknown = [lang for lang in dict.fromkeys([*languages, source_language]) if lang not in XNLI_LANGUAGES]
            if unknown:
                raise XNLIInputError(
                    f"XNLI has no language {', '.join(unknown)}",
                    source="--languages" if data_args.languages else "--train_language",
                    fix=f"choose among: {' '.join(XNLI_LANGUAGES)}",
                )
        need = {
            "train": [source_language] if training_args.do_train else [],
            # Dev sets: the selection set, and every language for the report.
            "validation": list(
                dict.fromkeys(([source_language] if selects else []) + (languages if training_args.do_eval else []))
            ),
            "test": languages if training_args.do_predict else [],
        }
        loaded = load_hub_splits(data_args, model_args, need)
        train_dataset = loaded["train"].get(source_language)
        dev_sets, test_sets = loaded["validation"], loaded["test"]
    else:
        train_dataset, dev_sets, test_sets = None, {}, {}
        if training_args.do_train:
            if not data_args.train_file:
                raise XNLIInputError("--do_train needs training data", fix="pass --train_file (or --dataset_name)")
            train_dataset = make_dataset(read_nli_file(data_args.train_file, label_list), label_list)
        if training_args.do_eval and data_args.validation_files:
            wanted = None if data_args.languages is None else [source_language, *data_args.languages]
            dev_sets = load_local_split(
                data_args.validation_files, "validation", "--validation_files", label_list, wanted
            )
        if training_args.do_predict:
            if not data_args.test_files:
                raise XNLIInputError("--do_predict needs test data", fix="pass --test_files (or --dataset_name)")
            test_sets = load_local_split(data_args.test_files, "test", "--test_files", label_list, data_args.languages)
        languages = data_args.languages or list(dict.fromkeys([*test_sets, *dev_sets]))

    # Every requested test set must exist; dev sets must exist where model selection needs them.
    checks = [("test", "--test_files", test_sets, languages if training_args.do_predict else [])]
    if selects:
        needed = [source_language] if data_args.select_on == "source_dev" else languages
        checks.append(("dev", "--validation_files", dev_sets, needed))
    for split, option, available, needed in checks:
        missing = [lang for lang in needed if lang not in available]
        if missing:
            fix = f"add `{missing[0]}=PATH` to {option}"
            if split == "dev":
                fix += ", or pass --eval_strategy no to train without model selection"
            if data_args.languages:
                fix += ", or leave it out of --languages"
            raise XNLIInputError(
                f"no {split} data for language {', '.join(missing)} (the data has: {', '.join(available) or 'none'})",
                source=option,
                fix=fix,
            )
    # Report the train language first, then the others in the order they were requested.
    languages = [lang for lang in languages if lang in test_sets or lang in dev_sets]
    languages.sort(key=lambda lang: lang != source_language)
    return train_dataset, dev_sets, test_sets, languages


def load_pretrained(load, option: str, source: str):
    """`load()` (a from_pretrained call on `source`), with a loading failure turned into one ConfigError naming the
    option."""
    try:
        return load()
    except (OSError, ValueError) as error:
        local = "" if os.path.exists(source) else " (no local folder of that name, so it was looked up on the Hub)"
        raise ConfigError(f"{option} {source}{local}: {str(error).strip()}") from error


def main(args: list[str] | None = None) -> dict:
    """Runs the script; `args` defaults to the command line. Returns the content of `xnli_results.json`."""
    # See all possible arguments with --help, or in transformers' training_args.py.
    parser = argument_parser((ModelArguments, DataTrainingArguments, LoraArguments, XNLITrainingArguments))
    args = sys.argv[1:] if args is None else args
    model_args, data_args, lora_args, training_args = parse_arguments(parser, args)
    training_args.dataloader_pin_memory &= torch.cuda.is_available()  # pinning serves GPU copies; on CPU it warns

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(f"Training/evaluation parameters {training_args}")

    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise XNLIInputError("nothing to do", fix="pass --do_train, --do_eval and/or --do_predict")
    if data_args.dataset_name is None and not (
        data_args.train_file or data_args.validation_files or data_args.test_files
    ):
        raise XNLIInputError(
            "no data", fix="pass --dataset_name xnli, or local files with --train_file/--validation_files/--test_files"
        )
    label_list, source_language = data_args.label_list, data_args.train_language
    # Model selection happens when Trainer evaluates during training; it sees only the selection dev set(s).
    selects = training_args.do_train and training_args.eval_strategy != IntervalStrategy.NO

    # Everything is read and checked before anything is written, so bad input leaves output_dir untouched.
    check_training_arguments(training_args)
    # The one rule for damaged checkpoints (README): an explicit one is refused, True skips them with a warning.
    resume = None
    if training_args.do_train:
        resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    check_output_folder(
        training_args.output_dir,
        reads={
            "--model_name_or_path": model_args.model_name_or_path,
            "--config_name": model_args.config_name,
            "--tokenizer_name": model_args.tokenizer_name,
        },
        overwrite=training_args.overwrite_output_dir,
        resuming=resume is not None,
        outputs=XNLI_OUTPUTS,
    )
    tokenizer_source = model_args.tokenizer_name or model_args.model_name_or_path
    tokenizer_option = "--tokenizer_name" if model_args.tokenizer_name else "--model_name_or_path"
    check_tokenizer_folder(tokenizer_source, tokenizer_option)
    train_dataset, dev_sets, test_sets, languages = load_data(model_args, data_args, training_args, selects)
    if data_args.select_on == "source_dev":
        selection_languages = [source_language]
    else:
        selection_languages = [lang for lang in dict.fromkeys([source_language, *languages]) if lang in dev_sets]

    # ------------------------------------------------------------------------------------------------------------
    # Model and tokenizer
    # ------------------------------------------------------------------------------------------------------------
    set_seed(training_args.seed)
    hub_kwargs = {
        "cache_dir": model_args.cache_dir,
        "revision": model_args.model_revision,
        "token": model_args.token,
        "trust_remote_code": model_args.trust_remote_code,
    }
    config_option = "--config_name" if model_args.config_name else "--model_name_or_path"
    config = load_pretrained(
        lambda: AutoConfig.from_pretrained(model_args.config_name or model_args.model_name_or_path, **hub_kwargs),
        config_option,
        model_args.config_name or model_args.model_name_or_path,
    )
    # A checkpoint already fine-tuned with named labels must use them in the order of the data's label ids.
    checkpoint_labels = [config.id2label[i] for i in sorted(config.id2label)] if config.id2label else []
    if checkpoint_labels and checkpoint_labels != [f"LABEL_{i}" for i in range(len(checkpoint_labels))]:
        if [name.lower() for name in checkpoint_labels] != [name.lower() for name in label_list]:
            raise XNLIInputError(
                f"the checkpoint's labels {checkpoint_labels} differ from the data's labels {label_list}",
                source=model_args.model_name_or_path,
                fix=f"pass --label_list {' '.join(checkpoint_labels)} if the names match in another order, "
                "or fine-tune from a checkpoint without a classification head",
            )
    positions = usable_positions(config)
    if positions is not None and data_args.max_seq_length > positions:
        raise XNLIInputError(
            f"{data_args.max_seq_length} tokens do not fit the {positions} positions of this model "
            f"(max_position_embeddings={config.max_position_embeddings})",
            source="--max_seq_length",
            fix=f"pass --max_seq_length {positions} or less",
        )
    config.num_labels = len(label_list)
    config.id2label = dict(enumerate(label_list))
    config.label2id = {name: i for i, name in enumerate(label_list)}
    config.finetuning_task = "xnli"
    tokenizer = load_pretrained(
        lambda: AutoTokenizer.from_pretrained(tokenizer_source, **hub_kwargs), tokenizer_option, tokenizer_source
    )
    # Pretraining checkpoints (InfoXLMForPreTraining, *ForMaskedLM) load their encoder; the head starts fresh.
    model = load_pretrained(
        lambda: AutoModelForSequenceClassification.from_pretrained(
            model_args.model_name_or_path, config=config, **hub_kwargs
        ),
        "--model_name_or_path",
        model_args.model_name_or_path,
    )
    if lora_args.lora_r is not None:
        lora_config = LoraConfig(
            # SEQ_CLS makes peft train and save the classification head (`classifier`/`score`) as modules_to_save.
            task_type=TaskType.SEQ_CLS,
            r=lora_args.lora_r,
            lora_alpha=lora_args.lora_alpha,
            lora_dropout=lora_args.lora_dropout,
            target_modules=lora_args.lora_target_modules,
        )
        model = get_peft_model(model, lora_config)
        trainable, total = model.get_nb_trainable_parameters()
        logger.info(f"LoRA: training {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%).")

    # ------------------------------------------------------------------------------------------------------------
    # Tokenization
    # ------------------------------------------------------------------------------------------------------------
    padding = "max_length" if data_args.pad_to_max_length else False

    def first(dataset: Dataset, max_samples: int | None) -> Dataset:
        return dataset if max_samples is None else dataset.select(range(min(max_samples, len(dataset))))

    def tokenize(dataset: Dataset, description: str) -> Dataset:
        with training_args.main_process_first(desc=description):
            return dataset.map(
                lambda batch: tokenizer(
                    batch["premise"],
                    batch["hypothesis"],
                    padding=padding,
                    max_length=data_args.max_seq_length,
                    truncation=True,
                ),
                batched=True,
                num_proc=data_args.preprocessing_num_workers,
                remove_columns=["premise", "hypothesis"],
                desc=description,
            )

    if train_dataset is not None:
        train_dataset = tokenize(first(train_dataset, data_args.max_train_samples), "Tokenizing the train set")
    # Raw (subsampled) sets are kept for the prediction files.
    raw_sets = {
        "dev": {lang: first(dataset, data_args.max_eval_samples) for lang, dataset in dev_sets.items()},
        "test": {lang: first(dataset, data_args.max_predict_samples) for lang, dataset in test_sets.items()},
    }
    eval_sets = {
        split: {lang: tokenize(dataset, f"Tokenizing {lang} {split}") for lang, dataset in sets.items()}
        for split, sets in raw_sets.items()
    }
    selection_set = None
    if selects and data_args.select_on == "source_dev":
        selection_set = eval_sets["dev"][source_language]
    elif selects:
        selection_set = {lang: eval_sets["dev"][lang] for lang in selection_languages}

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        metrics = classification_metrics(np.argmax(logits, axis=-1), prediction.label_ids, label_list)
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}

    # We push once at the end, with our model card, instead of letting Trainer push checkpoints with its own card.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    trainer = XNLITrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=selection_set,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(
            tokenizer, pad_to_multiple_of=8 if training_args.fp16 or training_args.bf16 else None
        ),
        compute_metrics=compute_metrics,
    )
    check_training_arguments(training_args, model)  # again, with the model: some optimizers need it
    if training_args.overwrite_output_dir and trainer.is_world_process_zero():
        # Every check has passed and the run is about to write: only now does the previous run go.
        removed = remove_previous_run(training_args.output_dir, XNLI_OUTPUTS)
        if removed:
            names = ", ".join(path.name for path in removed)
            logger.warning(
                f"--overwrite_output_dir: deleted the previous run's {names} in {training_args.output_dir}."
            )
    trainer.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------------------------------------------------
    output_dir = training_args.output_dir
    train_metrics = {}
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=resume)
        train_metrics = {**train_result.metrics, "train_samples": len(train_dataset)}
        # With LoRA, Trainer saves the adapter and the trained head; the merged model goes to output_dir below.
        trainer.save_model(os.path.join(output_dir, ADAPTER_DIR) if lora_args.lora_r else None)
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()

    # ------------------------------------------------------------------------------------------------------------
    # Evaluation of every language: dev sets (reported only, unless --select_on all_dev) and test sets
    # ------------------------------------------------------------------------------------------------------------
    results = {lang: {} for lang in languages}
    predictions = {}
    for split, enabled in (("dev", training_args.do_eval), ("test", training_args.do_predict)):
        for language in languages if enabled else []:
            if language not in eval_sets[split]:
                continue
            logger.info(f"*** {split} {language} ***")
            output = trainer.predict(eval_sets[split][language], metric_key_prefix=f"{split}_{language}")
            logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
            scores = classification_metrics(np.argmax(logits, axis=-1), output.label_ids, label_list)
            results[language][split] = {"loss": output.metrics.get(f"{split}_{language}_loss"), **scores}
            predictions[split, language] = logits
    results = {lang: scores for lang, scores in results.items() if scores}
    averages = summarize(results, source_language)
    table = results_table(results, averages, source_language) if results else ""

    # ------------------------------------------------------------------------------------------------------------
    # Report: Markdown table, JSON, bar chart, predictions, model card; LoRA merge; Hub upload
    # ------------------------------------------------------------------------------------------------------------
    report = {
        "results": results,
        "averages": averages,
        "table": table,
        "train": train_metrics,
        "selection": {
            "protocol": "zero-shot" if data_args.select_on == "source_dev" else "all-languages dev",
            "dev_languages": selection_languages,
            "enabled": training_args.load_best_model_at_end and selects,
            "metric": training_args.metric_for_best_model if selects else None,
            "best_metric": trainer.state.best_metric,
            "best_checkpoint": trainer.state.best_model_checkpoint,
        },
        "settings": {
            "model_name_or_path": model_args.model_name_or_path,
            "source_language": source_language,
            "languages": languages,
            "id2label": {str(i): name for i, name in config.id2label.items()},
            "label2id": config.label2id,
            "model": asdict(model_args) | {"token": None},
            "data": asdict(data_args),
            "lora": asdict(lora_args) if lora_args.lora_r is not None else None,
            "training": json.loads(training_args.to_json_string()) | {"push_to_hub": push_to_hub},
            "command": [os.path.basename(sys.argv[0]), *args],
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "datasets": datasets.__version__,
                "peft": peft.__version__,
            },
        },
    }
    if not trainer.is_world_process_zero():
        return report

    predictions_dir = os.path.join(output_dir, PREDICTIONS_DIR)
    os.makedirs(predictions_dir, exist_ok=True)
    written = set()
    for (split, language), logits in predictions.items():
        written.add(f"{language}.{split}.tsv")
        write_predictions(
            os.path.join(predictions_dir, f"{language}.{split}.tsv"), raw_sets[split][language], logits, label_list
        )
    # A rerun into the same folder must not leave an earlier run's predictions beside this run's.
    for name in sorted(set(os.listdir(predictions_dir)) - written):
        if name.endswith(".tsv"):
            os.remove(os.path.join(predictions_dir, name))
            logger.info(f"Removed {PREDICTIONS_DIR}/{name} of an earlier run.")
    if not table and os.path.exists(os.path.join(output_dir, CHART_FILE)):
        os.remove(os.path.join(output_dir, CHART_FILE))  # an earlier run's chart would be taken for this one's
    if table:
        print(f"\nXNLI results ({model_args.model_name_or_path}):\n\n{table}\n")
        model_name = os.path.basename(model_args.model_name_or_path.rstrip("/"))
        plot_accuracy(
            results,
            averages,
            source_language,
            len(label_list),
            f"XNLI: {model_name}",
            os.path.join(output_dir, CHART_FILE),
        )
    write_text(os.path.join(output_dir, RESULTS_FILE), json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    if training_args.do_train:
        if isinstance(trainer.model, PeftModel):
            # The merged model loads without peft and gives the adapter model's logits.
            trainer.model.merge_and_unload().save_pretrained(output_dir)
            tokenizer.save_pretrained(output_dir)
        card = model_card(model_args, data_args, lora_args, config.model_type, report)
        write_text(os.path.join(output_dir, "README.md"), card)

    if push_to_hub:
        api = HfApi(token=training_args.hub_token)
        repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(output_dir))
        repo_id = api.create_repo(repo_id, private=training_args.hub_private_repo, exist_ok=True).repo_id
        api.upload_folder(
            repo_id=repo_id,
            folder_path=output_dir,
            commit_message="XNLI fine-tuning: model, results and model card",
            ignore_patterns=["checkpoint-*", "checkpoint-*/**", "runs/**", "*.tmp"],
        )
        logger.info(f"Pushed {output_dir} to https://huggingface.co/{repo_id}")
    return report


if __name__ == "__main__":
    run_cli(main, (XNLIInputError, ConfigError, OutputFolderError, CheckpointError))
