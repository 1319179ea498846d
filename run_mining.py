#!/usr/bin/env python
"""
BUCC-style bitext mining with any checkpoint (InfoXLM or plain `xlm-roberta`): find the translation pairs hidden in
two monolingual sentence sets, and score them against gold pairs.

Input is BUCC's format: two `id<TAB>sentence` files (e.g. `de-en.training.de` and `de-en.training.en`) and a gold
file of `source_id<TAB>target_id` lines. Every sentence is encoded (`--pooling`: `xlco`, the `<s>` state of layer
xlco_layer through the trained projection, the default when the checkpoint has one; `mean`, mean pooling, XTREME's
setting, the default otherwise), its best candidate on the other side is the best ratio margin among its
`--margin_k` (4) nearest neighbours (LASER, XTREME's BUCC), and the union of both directions' best candidates is
ranked by margin. Precision, recall and F1 are reported at the threshold that maximises F1 on the gold pairs (what
XTREME reports) and at `--threshold` when given (a threshold chosen beforehand: the honest figure):

    python run_mining.py --model_name_or_path outputs/x/model --source_file bucc/de-en.training.de \
        --target_file bucc/de-en.training.en --gold_file bucc/de-en.training.gold --output_dir outputs/x/mining

The run prints the scores and writes `mining.md`, `mining.json` (every number and the settings) and
`candidates.tsv` (every candidate pair with its margin and whether it is gold) to `--output_dir`. Bad input (a
missing file, a line that is not `id<TAB>sentence`, a repeated id, a gold id missing from its file, ...) stops the
run before the model is loaded, with one message naming the file and line, and exit status 2.
"""

import logging
import os
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

from evaluation.mining import mine_and_score, read_gold_pairs, read_id_sentences  # noqa: E402
from evaluation.reports import MINING_FILES, check_report_folder, format_mining_markdown, write_mining_outputs  # noqa: E402
from evaluation.retrieval import (  # noqa: E402
    POOLINGS,
    check_layer,
    describe_poolings,
    encode,
    load_retrieval_config,
    load_retrieval_model,
    load_retrieval_tokenizer,
)
from trainer.data import DataError  # noqa: E402
from trainer.output_folder import OutputFolderError  # noqa: E402

logger = logging.getLogger(__name__)


@dataclass
class MiningArguments:
    """What to mine with, from which files, and where to write the results."""

    model_name_or_path: str = field(
        metadata={"help": "Checkpoint: a local folder (infoxlm or xlm-roberta) or a Hub model id."}
    )
    source_file: str = field(metadata={"help": "`id<TAB>sentence` file of one language (BUCC: xx.training.de)."})
    target_file: str = field(metadata={"help": "`id<TAB>sentence` file of the other language (BUCC: ....en)."})
    gold_file: str = field(metadata={"help": "`source_id<TAB>target_id` gold pairs (BUCC: ....gold)."})
    output_dir: str = field(metadata={"help": "Where mining.md, mining.json and candidates.tsv are written."})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer name or path, if the checkpoint folder has none."}
    )
    pooling: str | None = field(
        default=None,
        metadata={"help": "xlco or mean. Default: xlco with a trained projection, else mean (XTREME's setting)."},
    )
    layer: int | None = field(
        default=None, metadata={"help": "Encoder layer pooled (0: embedding output). Default: config.xlco_layer."}
    )
    margin_k: int = field(default=4, metadata={"help": "Neighbours of the margin's denominator (LASER: 4)."})
    threshold: float | None = field(
        default=None, metadata={"help": "Also report precision/recall/F1 of the pairs with margin >= this."}
    )
    batch_size: int = field(default=64, metadata={"help": "Sentences per forward pass."})
    max_length: int = field(default=128, metadata={"help": "Tokens per sentence, <s> and </s> included."})
    device: str = field(default="auto", metadata={"help": "`auto` (cuda if available, else cpu), `cpu`, `cuda:0`."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into an output_dir that already holds other files."}
    )
    disable_tqdm: bool = field(default=False, metadata={"help": "No progress bar."})

    def __post_init__(self):
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ConfigError(f"--pooling {self.pooling}: unknown. Use one of {', '.join(POOLINGS)}.")
        for option, value, minimum in (
            ("--margin_k", self.margin_k, 1),
            ("--batch_size", self.batch_size, 1),
            ("--max_length", self.max_length, 2),
        ):
            if value < minimum:
                raise ConfigError(f"{option} {value}: must be at least {minimum}.")
        for option in ("source_file", "target_file", "gold_file"):
            path = getattr(self, option)
            if not os.path.isfile(path):
                raise ConfigError(f"--{option} {path}: no such file ({os.path.abspath(path)}).")


def parse_args(argv: list[str] | None = None) -> MiningArguments:
    """From flags or one .json/.yaml file; a bad value raises ConfigError."""
    (arguments,) = parse_arguments(argument_parser(MiningArguments), sys.argv[1:] if argv is None else argv)
    return arguments


def main(args: list[str] | None = None) -> dict:
    """Runs the mining; `args` defaults to the command line. Returns the content of `mining.json`."""
    arguments = parse_args(args)
    log_to_stdout(logger)

    # Everything is checked before the model is loaded, so bad input fails in seconds and writes nothing.
    model_path = arguments.model_name_or_path
    reads = {"--model_name_or_path": model_path, "--tokenizer_name": arguments.tokenizer_name}
    check_report_folder(arguments.output_dir, reads, arguments.overwrite_output_dir, MINING_FILES)
    device = resolve_device(arguments.device)
    config = load_retrieval_config(model_path)
    layer = check_layer(arguments.layer, config)
    check_sequence_length(config, arguments.max_length, "--max_length")
    source_ids, source_sentences = read_id_sentences(arguments.source_file, "--source_file")
    target_ids, target_sentences = read_id_sentences(arguments.target_file, "--target_file")
    gold = read_gold_pairs(arguments.gold_file, source_ids, target_ids)
    tokenizer = load_retrieval_tokenizer(arguments.tokenizer_name, model_path, config)
    model, projection = load_pretrained(
        lambda: load_retrieval_model(model_path, device), model_path, "--model_name_or_path"
    )
    pooling = arguments.pooling or ("xlco" if projection == "trained" else "mean")
    description = describe_poolings(layer, config.xlco_layer, projection)[pooling]
    logger.info(
        f"{arguments.model_name_or_path}: {len(source_ids)} + {len(target_ids)} sentences, {len(gold)} gold pairs, "
        f"vector = {description}, on {device}"
    )
    vectors = [
        encode(model, tokenizer, sentences, arguments.batch_size, arguments.max_length, pooling, layer)
        for sentences in (source_sentences, target_sentences)
    ]
    candidates, scores = mine_and_score(
        *vectors, source_ids, target_ids, gold, threshold=arguments.threshold, margin_k=arguments.margin_k
    )
    report = {
        "model_name_or_path": arguments.model_name_or_path,
        "source_file": arguments.source_file,
        "target_file": arguments.target_file,
        "gold_file": arguments.gold_file,
        "source_sentences": len(source_ids),
        "target_sentences": len(target_ids),
        "gold_pairs": len(gold),
        "pooling": pooling,
        "pooling_description": description,
        "layer": layer,
        "num_hidden_layers": config.num_hidden_layers,
        "xlco_projection": projection,
        "scoring": "margin",
        "margin_k": arguments.margin_k,
        "candidates": len(candidates),
        "scores": scores,
    }
    print(format_mining_markdown(report))
    written = write_mining_outputs(report, candidates, arguments.output_dir)
    logger.info(f"Wrote {', '.join(written)}")
    return report


if __name__ == "__main__":
    run_cli(main, (ConfigError, DataError, OutputFolderError))
