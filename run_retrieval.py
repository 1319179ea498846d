#!/usr/bin/env python
"""
Tatoeba sentence retrieval for any checkpoint: an InfoXLM checkpoint written by `run_pretrain.py`, or a plain
`xlm-roberta` one (xlm-roberta-base, microsoft/infoxlm-base, an `as_xlm_roberta` export), local or from the Hub.

For every language of `--tatoeba_dir` (or of `--languages`), the eval split (pair `i` with `i % 5 == 0`, the pairs
that `run_pretrain.py --parallel_heldout_every 5` keeps out of training) is encoded, and each sentence retrieves its
nearest neighbour by cosine similarity among the other side's eval sentences, in both directions (xx→en, en→xx).
Two sentence vectors are reported side by side, both from the states after layer `config.xlco_layer` (`--layer`
overrides it):

- `xlco`: the XLCO sentence vector exactly as training computes it, the `<s>` state through the XLCO projection.
  A checkpoint without trained projection weights gets the raw `<s>` state (never a random projection), and the
  report says so.
- `mean`: the average of that layer's states over the sentence's tokens (padding excluded).

`--setting xtreme` is XTREME's Tatoeba setting: mean pooling of layer xlco_layer (8 of 12 for base), xx→en queries
only, cosine; with `--heldout_every 1` every pair is evaluated (XTREME's test set, for models that never trained on
Tatoeba). `--scoring cosine,margin` adds margin scoring: the best ratio margin among the `--margin_k` (4) nearest
neighbours (LASER; XTREME's BUCC). Every report states the split, candidates per query, directions, layer, pooling and
scoring. Languages with fewer than `--min_pairs` (10) pairs score high by chance alone: they are reported, marked and
left out of the averages, with a warning.

Languages are averaged separately for those with bitext in training (every language not in
`--mono_only_languages`) and those seen only in monolingual text (`--mono_only_languages`):

    python run_retrieval.py --model_name_or_path outputs/x/model --tatoeba_dir ../shared/data/tatoeba \
        --mono_only_languages spa,bul,ell,vie,urd,tha --output_dir outputs/x/retrieval

The run prints the per-language Markdown table and the group averages, and writes `retrieval.md`, `retrieval.json`
(every number and the settings) and `retrieval.png` (per-language bar chart) to `--output_dir`. A single `.json` or
`.yaml` argument is read as a config file instead of flags.

Bad input (a missing folder, a language without files, misaligned files, `--layer` out of range, ...) stops the run
before the model is loaded or anything is written, with one message naming the option or file and the fix, and exit
status 2.
"""

import logging
import os
import sys
from dataclasses import dataclass, field

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from infoxlm_cli import (
    ConfigError,
    argument_parser,
    check_tokenizer_folder,
    log_to_stdout,
    parse_arguments,
    require_own_trainer_package,
    run_cli,
    usable_positions,
)

require_own_trainer_package()  # before `import trainer`: Coqui's `trainer` on PyPI has the same name

from modeling_infoxlm import InfoXLMConfig  # noqa: E402
from trainer import (  # noqa: E402
    DataError,
    describe_poolings,
    evaluate_tatoeba,
    find_tatoeba_languages,
    format_retrieval_markdown,
    load_retrieval_model,
    load_tatoeba_eval,
    retrieval_report,
    write_retrieval_outputs,
)
from trainer.output_folder import OutputFolderError, RunOutputs, check_output_folder  # noqa: E402
from trainer.retrieval import DIRECTIONS, POOLINGS, RETRIEVAL_FILES, SCORINGS  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class RetrievalArguments:
    """What to evaluate, on which data, and where to write the report."""

    model_name_or_path: str = field(
        metadata={"help": "Checkpoint: a local folder (infoxlm or xlm-roberta) or a Hub model id."}
    )
    tatoeba_dir: str = field(
        metadata={
            "help": "Folder of tatoeba.<xx>-eng.<xx> + tatoeba.<xx>-eng.eng files (e.g. ../shared/data/tatoeba)."
        }
    )
    output_dir: str = field(metadata={"help": "Where retrieval.md, retrieval.json and retrieval.png are written."})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer name or path, if the checkpoint folder has none."}
    )
    languages: list[str] | None = field(
        default=None,
        metadata={"help": "Languages to evaluate (space- or comma-separated). Default: every language of the folder."},
    )
    mono_only_languages: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Languages seen only in monolingual text during training (space- or comma-separated), averaged "
            "separately from the others."
        },
    )
    heldout_every: int = field(
        default=5,
        metadata={
            "help": "The eval split is pair i with i % heldout_every == 0 (Tatoeba: 5); 1: every pair (XTREME's "
            "full test set, for models that never trained on Tatoeba)."
        },
    )
    layer: int | None = field(
        default=None,
        metadata={"help": "Encoder layer of both sentence vectors (0: embedding output). Default: config.xlco_layer."},
    )
    setting: str = field(
        default="both",
        metadata={
            "help": "`both`: the xlco vector and mean pooling, both directions. `xtreme`: XTREME's Tatoeba setting, "
            "mean pooling of layer config.xlco_layer (2/3 of the depth: 8 of 12 for base), xx→en queries only, "
            "cosine; add --heldout_every 1 for XTREME's full test set with a model not trained on Tatoeba. "
            "--pooling/--directions/--scoring given explicitly override the setting's."
        },
        # Choices are checked in __post_init__ for a one-line error.
    )
    pooling: list[str] | None = field(
        default=None, metadata={"help": "Sentence vectors (space- or comma-separated): xlco, mean."}
    )
    scoring: list[str] | None = field(
        default=None,
        metadata={
            "help": "How a query picks its candidate (space- or comma-separated): cosine (nearest neighbour) and/or "
            "margin (ratio margin over the --margin_k nearest neighbours of both sides, LASER / XTREME BUCC). "
            "Default: cosine."
        },
    )
    directions: list[str] | None = field(
        default=None,
        metadata={"help": "Which side queries (space- or comma-separated): xx->en, en->xx. Default: both."},
    )
    margin_k: int = field(default=4, metadata={"help": "Neighbours of the margin's denominator (LASER: 4)."})
    min_pairs: int = field(
        default=10,
        metadata={
            "help": "Languages with fewer eval pairs are reported but left out of the averages, with a warning "
            "(with n candidates chance is 1/n: a language of 1 pair scores 100%)."
        },
    )
    batch_size: int = field(default=64, metadata={"help": "Sentences per forward pass."})
    max_length: int = field(
        default=128, metadata={"help": "Tokens per sentence, <s> and </s> included; longer ones are truncated."}
    )
    device: str = field(
        default="auto", metadata={"help": "`auto` (cuda if available, else cpu), `cpu`, `cuda:0`, ..."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Write into an output_dir that already holds results or other files (replacing the results)."
        },
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "No progress bar."})

    def __post_init__(self):
        split = lambda items: list(dict.fromkeys(code for item in items for code in item.split(",") if code))  # noqa: E731
        if self.languages is not None:
            self.languages = split(self.languages)
        self.mono_only_languages = split(self.mono_only_languages)
        presets = {"both": (["xlco", "mean"], ["xx->en", "en->xx"]), "xtreme": (["mean"], ["xx->en"])}
        if self.setting not in presets:
            raise ConfigError(f"--setting {self.setting}: unknown. Use one of {', '.join(presets)}.")
        self.pooling = split(self.pooling) if self.pooling is not None else presets[self.setting][0]
        self.directions = split(self.directions) if self.directions is not None else presets[self.setting][1]
        self.scoring = split(self.scoring) if self.scoring is not None else ["cosine"]
        for option, values, allowed in (
            ("--pooling", self.pooling, POOLINGS),
            ("--scoring", self.scoring, SCORINGS),
            ("--directions", self.directions, DIRECTIONS),
        ):
            unknown = [value for value in values if value not in allowed]
            if unknown or not values:
                raise ConfigError(f"{option} {','.join(unknown)}: pass one or more of {', '.join(allowed)}.")
        for option, value, minimum in (
            ("--heldout_every", self.heldout_every, 1),
            ("--margin_k", self.margin_k, 1),
            ("--min_pairs", self.min_pairs, 1),
            ("--batch_size", self.batch_size, 1),
            ("--max_length", self.max_length, 2),
        ):
            if value < minimum:
                raise ConfigError(f"{option} {value}: must be at least {minimum}.")


def parse_args(argv: list[str] | None = None) -> RetrievalArguments:
    """From flags or one .json/.yaml file; a bad value raises ConfigError."""
    (arguments,) = parse_arguments(argument_parser(RetrievalArguments), sys.argv[1:] if argv is None else argv)
    return arguments


def _language_list(languages) -> str:
    languages = sorted(languages)
    return ", ".join(languages[:30]) + (f", ... ({len(languages)} in all)" if len(languages) > 30 else "")


def check_output_dir(arguments, own_files: tuple[str, ...] = RETRIEVAL_FILES) -> None:
    """The rule of every script (trainer/output_folder.py), stricter on other files: a folder holding anything (a
    previous evaluation, other files) is refused unless --overwrite_output_dir, which writes the results beside
    the other files; never the folder of the model or tokenizer read. `own_files`: the script's results."""
    check_output_folder(
        arguments.output_dir,
        reads={"--model_name_or_path": arguments.model_name_or_path, "--tokenizer_name": arguments.tokenizer_name},
        overwrite=arguments.overwrite_output_dir,
        outputs=RunOutputs(files=own_files, checkpoints=False, others_count=True),
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name}: unknown device. Use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine. Use --device cpu (or auto).")
    return device


def load_config(name_or_path: str) -> InfoXLMConfig:
    """The checkpoint's config as InfoXLM's (an `xlm-roberta` one gets the XLCO defaults: xlco_layer = 2/3 depth)."""
    # A Hub id is `name` or `owner/name` (the rule of run_pretrain.py); anything else must be an existing folder, so
    # a mistyped path is reported as missing rather than as a failed download.
    looks_like_a_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if not os.path.isdir(name_or_path) and (looks_like_a_path or os.path.exists(name_or_path)):
        problem = "a file, not a model folder" if os.path.exists(name_or_path) else "no such folder"
        raise ConfigError(
            f"--model_name_or_path {name_or_path}: {problem} ({os.path.abspath(name_or_path)}). Pass a folder "
            "written by save_pretrained (config.json + weights), e.g. outputs/<run>/model, or a Hub model id."
        )
    if os.path.isdir(name_or_path) and not os.path.isfile(os.path.join(name_or_path, "config.json")):
        raise ConfigError(
            f"--model_name_or_path {name_or_path}: no config.json in that folder. Pass a folder written by "
            "save_pretrained (config.json + weights), e.g. outputs/<run>/model."
        )
    try:
        return InfoXLMConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        local = (
            "" if os.path.exists(name_or_path) else " (no local folder of that name, so it was looked up on the Hub)"
        )
        raise ConfigError(
            f"--model_name_or_path {name_or_path}{local}: cannot read an infoxlm or xlm-roberta config: "
            f"{str(error).strip()}"
        ) from None


def load_tokenizer(tokenizer_name: str | None, model_name_or_path: str, config) -> "PreTrainedTokenizerBase":
    """The model's tokenizer (`tokenizer_name`, else the checkpoint's); a missing or too large one raises ConfigError."""
    tokenizer_source = tokenizer_name or model_name_or_path
    check_tokenizer_folder(tokenizer_source, "--tokenizer_name" if tokenizer_name else "--model_name_or_path")
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    except (OSError, ValueError) as error:
        option = "--tokenizer_name" if tokenizer_name else "--model_name_or_path"
        raise ConfigError(
            f"{option} {tokenizer_source}: cannot load a tokenizer ({str(error).strip()}). Pass --tokenizer_name "
            "with the model's tokenizer."
        ) from None
    # transformers builds a tokenizer of special tokens only from a folder without tokenizer files: every word
    # would become <unk>, and every score chance.
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        raise ConfigError(
            f"{'--tokenizer_name' if tokenizer_name else '--model_name_or_path'} {tokenizer_source}: no "
            "tokenizer files there (only special tokens were found). Pass --tokenizer_name with the model's tokenizer."
        )
    if len(tokenizer) > config.vocab_size:
        raise ConfigError(
            f"--tokenizer_name {tokenizer_source}: {len(tokenizer):,} tokens but the model's vocab_size is "
            f"{config.vocab_size:,}, so some ids have no embedding. Use the model's own tokenizer."
        )
    return tokenizer


def load_eval_pairs(arguments: RetrievalArguments) -> dict[str, tuple[list[str], list[str]]]:
    """The eval split of every requested language; bad folders, languages and files raise before any model work."""
    tatoeba_dir = arguments.tatoeba_dir
    if not os.path.isdir(tatoeba_dir):
        raise ConfigError(
            f"--tatoeba_dir {tatoeba_dir}: no such folder ({os.path.abspath(tatoeba_dir)}). Pass the folder of "
            "tatoeba.<xx>-eng.<xx> + tatoeba.<xx>-eng.eng files, e.g. ../shared/data/tatoeba."
        )
    files = find_tatoeba_languages(tatoeba_dir, arguments.heldout_every)
    for option, requested in (
        ("--languages", arguments.languages or []),
        ("--mono_only_languages", arguments.mono_only_languages),
    ):
        missing = [language for language in requested if language not in files]
        if missing:
            raise ConfigError(
                f"{option}: no files for {', '.join(missing)} in {tatoeba_dir}. Add tatoeba.<xx>-eng.<xx> + "
                f"tatoeba.<xx>-eng.eng there or leave it out; the folder has: {_language_list(files)}."
            )
    selected = arguments.languages or sorted(files)
    pairs = load_tatoeba_eval({language: files[language] for language in selected}, arguments.heldout_every)
    skipped = [language for language in arguments.mono_only_languages if language not in pairs]
    if skipped:
        logger.info(f"--mono_only_languages {', '.join(skipped)}: not in --languages, not evaluated")
    return pairs


def main(args: list[str] | None = None) -> dict:
    """Runs the evaluation; `args` defaults to the command line. Returns the content of `retrieval.json`."""
    arguments = parse_args(args)
    log_to_stdout(logger)

    # Everything is checked before the model is loaded, so bad input fails in seconds and writes nothing.
    check_output_dir(arguments)
    tokenizer_source = arguments.tokenizer_name or arguments.model_name_or_path
    check_tokenizer_folder(
        tokenizer_source, "--tokenizer_name" if arguments.tokenizer_name else "--model_name_or_path"
    )
    device = resolve_device(arguments.device)
    config = load_config(arguments.model_name_or_path)
    layer = config.xlco_layer if arguments.layer is None else arguments.layer
    if not 0 <= layer <= config.num_hidden_layers:
        raise ConfigError(
            f"--layer {layer}: out of range for a {config.num_hidden_layers}-layer encoder. Pass 0.."
            f"{config.num_hidden_layers} (0: the embedding output), or leave it out for xlco_layer "
            f"({config.xlco_layer})."
        )
    positions = usable_positions(config)
    if positions is not None and arguments.max_length > positions:
        raise ConfigError(
            f"--max_length {arguments.max_length}: more tokens than the model's {positions} positions "
            f"(max_position_embeddings={config.max_position_embeddings}). Pass --max_length {positions} or less."
        )
    pairs = load_eval_pairs(arguments)

    tokenizer = load_tokenizer(arguments.tokenizer_name, arguments.model_name_or_path, config)
    try:
        model, projection = load_retrieval_model(arguments.model_name_or_path, device)
    except (OSError, ValueError) as error:
        raise ConfigError(f"--model_name_or_path {arguments.model_name_or_path}: {str(error).strip()}") from None
    descriptions = {
        pooling: text
        for pooling, text in describe_poolings(layer, config.xlco_layer, projection).items()
        if pooling in arguments.pooling
    }
    if projection != "trained" and "xlco" in arguments.pooling:
        logger.warning(f"xlco vector = {descriptions['xlco']}")
    logger.info(
        f"{arguments.model_name_or_path}: {len(pairs)} languages, {sum(len(s) for s, _ in pairs.values())} eval "
        f"pairs, layer {layer} of {config.num_hidden_layers}, on {device}"
    )

    results = evaluate_tatoeba(
        model,
        tokenizer,
        pairs,
        layer=layer,
        batch_size=arguments.batch_size,
        max_length=arguments.max_length,
        poolings=arguments.pooling,
        progress=not arguments.disable_tqdm,
        scorings=arguments.scoring,
        directions=arguments.directions,
        margin_k=arguments.margin_k,
    )
    report = retrieval_report(
        results,
        arguments.mono_only_languages,
        min_pairs=arguments.min_pairs,
        setting=arguments.setting,
        margin_k=arguments.margin_k,
        model_name_or_path=arguments.model_name_or_path,
        tokenizer=tokenizer_source,
        tatoeba_dir=arguments.tatoeba_dir,
        heldout_every=arguments.heldout_every,
        layer=layer,
        xlco_layer=config.xlco_layer,
        num_hidden_layers=config.num_hidden_layers,
        xlco_projection=projection,
        pooling_descriptions=descriptions,
        max_length=arguments.max_length,
    )
    print(format_retrieval_markdown(report))
    written = write_retrieval_outputs(report, arguments.output_dir)
    logger.info(f"Wrote {', '.join(written)}")
    return report


if __name__ == "__main__":
    run_cli(main, (ConfigError, DataError, OutputFolderError))
