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

import json
import logging
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from typing import Literal

import datasets
import peft
import torch
import transformers
from peft import PeftModel
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import IntervalStrategy, SaveStrategy

import modeling_infoxlm  # noqa: F401  (registers the infoxlm model type with the Auto classes)
from infoxlm_cli import (
    ConfigError,
    argument_parser,
    check_sequence_length,
    check_tokenizer_folder,
    check_training_arguments,
    load_pretrained,
    parse_arguments,
    require_own_trainer_package,
    run_cli,
)

require_own_trainer_package()  # before `import trainer`: Coqui's `trainer` on PyPI has the same name

from evaluation.xnli import (  # noqa: E402
    XNLI_LABELS,
    XNLIInputError,
    XNLITrainer,
    first_examples,
    load_xnli_data,
    predict_languages,
    selection_metrics,
    set_labels,
    summarize,
    tokenize_pairs,
    with_lora,
)
from evaluation.xnli_report import (  # noqa: E402
    ADAPTER_DIR,
    XNLI_OUTPUTS,
    model_card,
    push_output_folder,
    results_table,
    write_text,
    write_xnli_outputs,
)
from trainer.checkpoints import CheckpointError, resolve_resume_checkpoint  # noqa: E402
from trainer.output_folder import (  # noqa: E402
    OutputFolderError,
    check_output_folder,
    remove_previous_run,
    write_files_atomically,
)

logger = logging.getLogger(__name__)


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


def setup_logging(training_args: XNLITrainingArguments) -> None:
    """Timestamped lines on stdout at the process' log level (transformers' and datasets' too)."""
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


def check_task(data_args: DataTrainingArguments, training_args: XNLITrainingArguments) -> None:
    """Something to do, and data to do it on."""
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise XNLIInputError("nothing to do", fix="pass --do_train, --do_eval and/or --do_predict")
    if data_args.dataset_name is None and not (
        data_args.train_file or data_args.validation_files or data_args.test_files
    ):
        raise XNLIInputError(
            "no data", fix="pass --dataset_name xnli, or local files with --train_file/--validation_files/--test_files"
        )


def tokenized_sets(tokenizer, data_args, training_args, train_dataset, dev_sets, test_sets):
    """`(train set, raw eval sets, tokenized eval sets)`, subsampled by --max_*_samples, the eval sets as
    {"dev"/"test": {language: set}}; the raw ones are kept for the prediction files."""

    def tokenize(dataset, description: str):
        with training_args.main_process_first(desc=description):
            arguments = (data_args.max_seq_length, data_args.pad_to_max_length, data_args.preprocessing_num_workers)
            return tokenize_pairs(dataset, tokenizer, *arguments, description)

    if train_dataset is not None:
        train_dataset = tokenize(
            first_examples(train_dataset, data_args.max_train_samples), "Tokenizing the train set"
        )
    raw_sets = {
        "dev": {lang: first_examples(dataset, data_args.max_eval_samples) for lang, dataset in dev_sets.items()},
        "test": {lang: first_examples(dataset, data_args.max_predict_samples) for lang, dataset in test_sets.items()},
    }
    eval_sets = {
        split: {lang: tokenize(dataset, f"Tokenizing {lang} {split}") for lang, dataset in sets.items()}
        for split, sets in raw_sets.items()
    }
    return train_dataset, raw_sets, eval_sets


def load_model(model_args: ModelArguments, data_args: DataTrainingArguments, lora_args: LoraArguments):
    """`(config, tokenizer, model)`: the checkpoint with a classification head for the data's labels (a pretraining
    checkpoint loads its encoder, the head starts fresh), with LoRA adapters when --lora_r is set."""
    hub_kwargs = {
        "cache_dir": model_args.cache_dir,
        "revision": model_args.model_revision,
        "token": model_args.token,
        "trust_remote_code": model_args.trust_remote_code,
    }
    model_path = model_args.model_name_or_path
    config_source = model_args.config_name or model_path
    config_option = "--config_name" if model_args.config_name else "--model_name_or_path"
    config = load_pretrained(
        lambda: AutoConfig.from_pretrained(config_source, **hub_kwargs), config_source, config_option
    )
    set_labels(config, data_args.label_list, model_path)
    check_sequence_length(config, data_args.max_seq_length, "--max_seq_length")
    tokenizer_source = model_args.tokenizer_name or model_path
    tokenizer_option = "--tokenizer_name" if model_args.tokenizer_name else "--model_name_or_path"
    tokenizer = load_pretrained(
        lambda: AutoTokenizer.from_pretrained(tokenizer_source, **hub_kwargs), tokenizer_source, tokenizer_option
    )
    model = load_pretrained(
        lambda: AutoModelForSequenceClassification.from_pretrained(model_path, config=config, **hub_kwargs),
        model_path,
        "--model_name_or_path",
    )
    if lora_args.lora_r is not None:
        model = with_lora(
            model, lora_args.lora_r, lora_args.lora_alpha, lora_args.lora_dropout, lora_args.lora_target_modules
        )
    return config, tokenizer, model


def run_settings(model_args, data_args, lora_args, training_args, config, languages, push_to_hub, argv) -> dict:
    """Everything that defines the run, for `xnli_results.json` (the Hub token left out)."""
    return {
        "model_name_or_path": model_args.model_name_or_path,
        "source_language": data_args.train_language,
        "languages": languages,
        "id2label": {str(i): name for i, name in config.id2label.items()},
        "label2id": config.label2id,
        "model": asdict(model_args) | {"token": None},
        "data": asdict(data_args),
        "lora": asdict(lora_args) if lora_args.lora_r is not None else None,
        "training": json.loads(training_args.to_json_string()) | {"push_to_hub": push_to_hub},
        "command": [os.path.basename(sys.argv[0]), *argv],
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "datasets": datasets.__version__,
            "peft": peft.__version__,
        },
    }


def main(args: list[str] | None = None) -> dict:
    """Runs the script; `args` defaults to the command line. Returns the content of `xnli_results.json`."""
    # See all possible arguments with --help, or in transformers' training_args.py.
    parser = argument_parser((ModelArguments, DataTrainingArguments, LoraArguments, XNLITrainingArguments))
    args = sys.argv[1:] if args is None else args
    model_args, data_args, lora_args, training_args = parse_arguments(parser, args)
    training_args.dataloader_pin_memory &= torch.cuda.is_available()  # pinning serves GPU copies; on CPU it warns

    setup_logging(training_args)
    check_task(data_args, training_args)
    label_list, source_language = data_args.label_list, data_args.train_language
    # Model selection happens when Trainer evaluates during training; it sees only the selection dev set(s).
    selects = training_args.do_train and training_args.eval_strategy != IntervalStrategy.NO

    # Everything is read and checked before anything is written, so bad input leaves output_dir untouched.
    check_training_arguments(training_args)
    # The one rule for damaged checkpoints (README): an explicit one is refused, True skips them with a warning.
    resume = None
    if training_args.do_train:
        resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    reads = {
        f"--{name}": getattr(model_args, name) for name in ("model_name_or_path", "config_name", "tokenizer_name")
    }
    output_dir, overwrite = training_args.output_dir, training_args.overwrite_output_dir
    check_output_folder(
        output_dir, reads=reads, overwrite=overwrite, resuming=resume is not None, outputs=XNLI_OUTPUTS
    )
    check_tokenizer_folder(
        model_args.tokenizer_name or model_args.model_name_or_path,
        "--tokenizer_name" if model_args.tokenizer_name else "--model_name_or_path",
    )
    train_dataset, dev_sets, test_sets, languages = load_xnli_data(model_args, data_args, training_args, selects)
    if data_args.select_on == "source_dev":
        selection_languages = [source_language]
    else:
        selection_languages = [lang for lang in dict.fromkeys([source_language, *languages]) if lang in dev_sets]
    set_seed(training_args.seed)
    config, tokenizer, model = load_model(model_args, data_args, lora_args)

    train_dataset, raw_sets, eval_sets = tokenized_sets(
        tokenizer, data_args, training_args, train_dataset, dev_sets, test_sets
    )
    selection_set = {lang: eval_sets["dev"][lang] for lang in selection_languages} if selects else None
    if selects and data_args.select_on == "source_dev":
        selection_set = eval_sets["dev"][source_language]

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
        compute_metrics=selection_metrics(label_list),
    )
    check_training_arguments(training_args, model)  # again, with the model: some optimizers need it
    if overwrite and trainer.is_world_process_zero():
        # Every check has passed and the run is about to write: only now does the previous run go.
        removed = remove_previous_run(output_dir, XNLI_OUTPUTS)
        if removed:
            names = ", ".join(path.name for path in removed)
            logger.warning(f"--overwrite_output_dir: deleted the previous run's {names} in {output_dir}.")
    trainer.accelerator.wait_for_everyone()

    train_metrics = {}
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=resume)
        train_metrics = {**train_result.metrics, "train_samples": len(train_dataset)}
        # With LoRA, Trainer saves the adapter and the trained head; the merged model goes to output_dir below.
        trainer.save_model(os.path.join(output_dir, ADAPTER_DIR) if lora_args.lora_r else None)
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()

    # Every language: dev sets (reported only, unless --select_on all_dev) and test sets.
    splits = [
        split for split, enabled in (("dev", training_args.do_eval), ("test", training_args.do_predict)) if enabled
    ]
    results, predictions = predict_languages(trainer, eval_sets, splits, languages, label_list)
    averages = summarize(results, source_language)
    table = results_table(results, averages, source_language) if results else ""
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
        "settings": run_settings(
            model_args, data_args, lora_args, training_args, config, languages, push_to_hub, args
        ),
    }
    if not trainer.is_world_process_zero():
        return report
    if table:
        print(f"\nXNLI results ({model_args.model_name_or_path}):\n\n{table}\n")
    title = f"XNLI: {os.path.basename(model_args.model_name_or_path.rstrip('/'))}"
    write_xnli_outputs(output_dir, report, predictions, raw_sets, title)
    if training_args.do_train:
        if isinstance(trainer.model, PeftModel):
            # The merged model loads without peft and gives the adapter model's logits.
            trainer.model.merge_and_unload().save_pretrained(output_dir)
            tokenizer.save_pretrained(output_dir)
        card = model_card(report, config.model_type)
        write_files_atomically({os.path.join(output_dir, "README.md"): lambda path: write_text(path, card)})
    if push_to_hub:
        repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(output_dir))
        push_output_folder(output_dir, repo_id, training_args.hub_token, training_args.hub_private_repo)
    return report


if __name__ == "__main__":
    run_cli(main, (XNLIInputError, ConfigError, OutputFolderError, CheckpointError))
