"""
What every command-line script of this repository shares: how it reads its arguments and how it ends on bad input.

A data, config or checkpoint error ends the script with one clean message on stderr (`<script>: error: ...`, the
format of argparse's own errors) and exit status 2, without a traceback: the message already names the file or
field and the fix. `INFOXLM_DEBUG=1` re-raises it with its traceback.
"""

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from transformers import HfArgumentParser

DEBUG_VARIABLE = "INFOXLM_DEBUG"


class ConfigError(ValueError):
    """A bad argument or config field: the message names it, its allowed range and the fix."""


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def script_name() -> str:
    return os.path.basename(sys.argv[0]) or "python"


def fail(message: str) -> NoReturn:
    """Ends the process the way argparse does on a bad argument: one message on stderr, exit status 2."""
    print(f"{script_name()}: error: {message}", file=sys.stderr)
    sys.exit(2)


def run_cli(main: Callable[[], object], clean_errors: tuple[type[BaseException], ...]) -> None:
    """Runs `main()`; an error of one of `clean_errors` ends the process with its message alone and exit status 2."""
    try:
        main()
    except clean_errors as error:
        if debugging():
            raise
        fail(str(error))


def argument_parser(dataclass_types) -> HfArgumentParser:
    """
    An `HfArgumentParser` whose `--help` cannot crash: argparse %-formats every help string, so a literal `%` in a
    dataclass field's help (such as "i % N") would raise instead of printing. Our helps never use argparse's
    `%(default)s` placeholders, so every `%` is literal.
    """
    parser = HfArgumentParser(dataclass_types)
    for action in parser._actions:
        if action.help and "%" in action.help and "%(" not in action.help:
            action.help = action.help.replace("%", "%%")
    return parser


# Model types whose position ids start after the padding index (fairseq's RoBERTa convention): XLM-R's
# max_position_embeddings of 514 holds 512 tokens.
PADDING_OFFSET_MODEL_TYPES = ("infoxlm", "xlm-roberta", "roberta", "camembert", "xlm-roberta-xl")


def usable_positions(config) -> int | None:
    """How many tokens one sequence of this model may hold (None if the config does not say)."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    if getattr(config, "model_type", None) in PADDING_OFFSET_MODEL_TYPES:
        pad = getattr(config, "pad_token_id", None)
        positions -= (pad if pad is not None else 1) + 1
    return positions


def require_own_trainer_package() -> None:
    """
    Exits with a clear message if `import trainer` would load someone else's package: our data pipeline and trainer
    live in a top-level package named `trainer`, as does Coqui's `trainer` on PyPI (and any project's own
    `trainer/` folder in the working directory). Nothing of the other package is imported.
    """
    spec = importlib.util.find_spec("trainer")
    if spec is None or spec.origin is None:
        fail(
            "the package `trainer` of infoxlm is not importable: run from the repository root, or install it with "
            "`pip install -e .` there."
        )
    init = Path(spec.origin)
    ours = init.name == "__init__.py" and (init.parent / "infoxlm_trainer.py").is_file()
    if not (ours and "InfoXLMTrainer" in init.read_text(encoding="utf-8", errors="replace")):
        fail(
            f"`import trainer` resolves to {init.parent}, which is not infoxlm's `trainer` package (Coqui's "
            "`trainer` on PyPI, or a `trainer/` folder in the working directory, has the same name). Uninstall it "
            "(`pip uninstall trainer`), run from another directory, or use a separate virtual environment."
        )
