"""
XNLI data and metrics for zero-shot cross-lingual evaluation (run_xnli.py): reading local NLI files (TSV without
quoting like the XNLI release, CSV, JSON Lines; XNLI 1.0's and MultiNLI's column and label names) and Hub datasets with
one config per language into one canonical form, every check with an `XNLIInputError` naming the file, line, column
or option and the fix; tokenizing premise-hypothesis pairs; classification metrics per language and their averages;
and the `Trainer` that averages them over languages for translate-train-style selection.
"""

import csv
import json
import logging
import os
from collections.abc import Iterator

import datasets
import numpy as np
from datasets import ClassLabel, Dataset, Features, Value
from peft import LoraConfig, TaskType, get_peft_model
from transformers import Trainer

from .metrics import load_metric

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
    name: str,
    need: dict[str, list[str]],
    label_list: list[str],
    cache_dir: str | None = None,
    token: str | None = None,
) -> dict[str, dict[str, Dataset]]:
    """
    Loads `need[split]` languages of each split from a Hub dataset with one config per language: train comes from
    the train language's `train` split, dev and test from each language's `validation` and `test` splits.
    `datasets.load_dataset` is called once per language config.
    """
    configs: dict[str, datasets.DatasetDict] = {}
    loaded: dict[str, dict[str, Dataset]] = {}
    for split, languages in need.items():
        loaded[split] = {}
        for language in languages:
            if language not in configs:
                try:
                    configs[language] = datasets.load_dataset(name, language, cache_dir=cache_dir, token=token)
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
            loaded[split][language] = standardize_hub_split(configs[language][split], source, label_list)
    return loaded


def classification_metrics(predictions: np.ndarray, labels: np.ndarray, label_list: list[str]) -> dict:
    """
    Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (rows: gold, columns: predicted),
    from the `nli_classification` evaluate module (evaluation/metrics/).
    """
    return load_metric("nli_classification").compute(
        predictions=np.asarray(predictions).tolist(), references=np.asarray(labels).tolist(), label_names=label_list
    )


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


def load_xnli_data(
    model_args, data_args, training_args, selects: bool
) -> tuple[Dataset | None, dict[str, Dataset], dict[str, Dataset], list[str]]:
    """
    Reads and checks all the data a run needs (run_xnli.py's argument dataclasses say which): `(train, dev sets,
    test sets, languages)`, the sets keyed by language. Raises `XNLIInputError` for bad data and for a language the
    run needs but the data lacks. `selects`: the run selects its checkpoint on dev sets (`--select_on`).
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
        loaded = load_hub_splits(
            data_args.dataset_name, need, label_list, cache_dir=model_args.cache_dir, token=model_args.token
        )
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


def set_labels(config, label_list: list[str], source: str) -> None:
    """Gives `config` the data's labels, in `label_list`'s id order. A checkpoint already fine-tuned with named
    labels must use them in that order: other names raise `XNLIInputError` (`source`: the checkpoint)."""
    checkpoint_labels = [config.id2label[i] for i in sorted(config.id2label)] if config.id2label else []
    if checkpoint_labels and checkpoint_labels != [f"LABEL_{i}" for i in range(len(checkpoint_labels))]:
        if [name.lower() for name in checkpoint_labels] != [name.lower() for name in label_list]:
            raise XNLIInputError(
                f"the checkpoint's labels {checkpoint_labels} differ from the data's labels {label_list}",
                source=source,
                fix=f"pass --label_list {' '.join(checkpoint_labels)} if the names match in another order, "
                "or fine-tune from a checkpoint without a classification head",
            )
    config.num_labels = len(label_list)
    config.id2label = dict(enumerate(label_list))
    config.label2id = {name: i for i, name in enumerate(label_list)}
    config.finetuning_task = "xnli"


def first_examples(dataset: Dataset, max_samples: int | None) -> Dataset:
    """The first `max_samples` examples of `dataset` (all of them for None)."""
    return dataset if max_samples is None else dataset.select(range(min(max_samples, len(dataset))))


def tokenize_pairs(
    dataset: Dataset, tokenizer, max_length: int, pad_to_max_length: bool, num_proc: int | None, description: str
) -> Dataset:
    """`dataset` with its premise-hypothesis pairs tokenized (truncated to `max_length`) in place of the texts."""
    return dataset.map(
        lambda batch: tokenizer(
            batch["premise"],
            batch["hypothesis"],
            padding="max_length" if pad_to_max_length else False,
            max_length=max_length,
            truncation=True,
        ),
        batched=True,
        num_proc=num_proc,
        remove_columns=["premise", "hypothesis"],
        desc=description,
    )


def _logits(predictions) -> np.ndarray:
    return predictions[0] if isinstance(predictions, tuple) else predictions


def selection_metrics(label_list: list[str]):
    """The `compute_metrics` of the Trainer: accuracy and macro-F1, what checkpoint selection can use."""

    def compute_metrics(prediction) -> dict[str, float]:
        metrics = classification_metrics(
            np.argmax(_logits(prediction.predictions), axis=-1), prediction.label_ids, label_list
        )
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}

    return compute_metrics


def predict_languages(
    trainer: Trainer, eval_sets: dict[str, dict[str, Dataset]], splits: list[str], languages: list[str], label_list
) -> tuple[dict[str, dict], dict[tuple[str, str], np.ndarray]]:
    """
    Evaluates `trainer`'s model on the tokenized `eval_sets[split][language]` of each of `splits` and `languages`
    that exists: `({language: {split: {"loss", metrics...}}}, {(split, language): logits})`.
    """
    results = {language: {} for language in languages}
    predictions = {}
    for split in splits:
        for language in languages:
            if language not in eval_sets[split]:
                continue
            logger.info(f"*** {split} {language} ***")
            output = trainer.predict(eval_sets[split][language], metric_key_prefix=f"{split}_{language}")
            logits = _logits(output.predictions)
            scores = classification_metrics(np.argmax(logits, axis=-1), output.label_ids, label_list)
            results[language][split] = {"loss": output.metrics.get(f"{split}_{language}_loss"), **scores}
            predictions[split, language] = logits
    return {language: scores for language, scores in results.items() if scores}, predictions


def with_lora(model, r: int, alpha: float, dropout: float, target_modules: list[str]):
    """`model` (a sequence classifier) as a peft model that trains LoRA adapters on `target_modules` and the
    classification head."""
    lora_config = LoraConfig(
        # SEQ_CLS makes peft train and save the classification head (`classifier`/`score`) as modules_to_save.
        task_type=TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
    )
    model = get_peft_model(model, lora_config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info(f"LoRA: training {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%).")
    return model
