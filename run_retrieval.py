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
import sys
from dataclasses import dataclass, field

from infoxlm_cli import (
    ConfigError,
    argument_parser,
    check_sequence_length,
    load_pretrained,
    log_to_stdout,
    parse_arguments,
    require_own_trainer_package,
    resolve_device,
    run_cli,
)

require_own_trainer_package()  # before `import trainer`: Coqui's `trainer` on PyPI has the same name

from evaluation.reports import (  # noqa: E402
    check_report_folder,
    format_retrieval_markdown,
    retrieval_report,
    write_retrieval_outputs,
)
from evaluation.retrieval import (  # noqa: E402
    DIRECTIONS,
    POOLINGS,
    SCORINGS,
    check_layer,
    describe_poolings,
    evaluate_tatoeba,
    load_retrieval_config,
    load_retrieval_model,
    load_retrieval_tokenizer,
)
from evaluation.tatoeba import load_tatoeba_languages  # noqa: E402
from trainer.data import DataError  # noqa: E402
from trainer.output_folder import OutputFolderError  # noqa: E402

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


def main(args: list[str] | None = None) -> dict:
    """Runs the evaluation; `args` defaults to the command line. Returns the content of `retrieval.json`."""
    arguments = parse_args(args)
    log_to_stdout(logger)

    # Everything is checked before the model is loaded, so bad input fails in seconds and writes nothing.
    model_path = arguments.model_name_or_path
    tokenizer_source = arguments.tokenizer_name or model_path
    reads = {"--model_name_or_path": model_path, "--tokenizer_name": arguments.tokenizer_name}
    check_report_folder(arguments.output_dir, reads, arguments.overwrite_output_dir)
    device = resolve_device(arguments.device)
    config = load_retrieval_config(model_path)
    tokenizer = load_retrieval_tokenizer(arguments.tokenizer_name, model_path, config)
    layer = check_layer(arguments.layer, config)
    check_sequence_length(config, arguments.max_length, "--max_length")
    pairs = load_tatoeba_languages(
        arguments.tatoeba_dir, arguments.languages, arguments.mono_only_languages, arguments.heldout_every
    )

    model, projection = load_pretrained(
        lambda: load_retrieval_model(model_path, device), model_path, "--model_name_or_path"
    )
    descriptions = {
        pooling: text
        for pooling, text in describe_poolings(layer, config.xlco_layer, projection).items()
        if pooling in arguments.pooling
    }
    if projection != "trained" and "xlco" in arguments.pooling:
        logger.warning(f"xlco vector = {descriptions['xlco']}")
    logger.info(
        f"{model_path}: {len(pairs)} languages, {sum(len(s) for s, _ in pairs.values())} eval "
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
        model_name_or_path=model_path,
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
