"""
What every command-line script of this repository shares: how it reads its arguments, the checks it makes before
loading a model (a model, config or tokenizer folder that is missing or damaged, a loading failure, a sequence length
beyond the model's positions, `--device`), and how it ends on bad input.

A data, config or checkpoint error ends the script with one clean message on stderr (`<script>: error: ...`, the
format of argparse's own errors) and exit status 2, without a traceback: the message already names the file or
field and the fix. `INFOXLM_DEBUG=1` re-raises it with its traceback.
"""

import dataclasses
import importlib.util
import json
import logging
import os
import re
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import yaml
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


CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
# What argparse takes for a negative number (argparse's own pattern): anything else that starts with "-", such as
# -1e-3, is read as an option name, and the option before it gets "expected one argument".
ARGPARSE_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def read_config_file(path: str) -> dict:
    """The arguments of a .json/.yaml config file; a missing, unparsable, empty or non-mapping file raises a
    ConfigError naming the file, the line where known, and what is wrong."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such file (a single argument is read as a .json/.yaml config).")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error}).") from None
    fix = 'Write one `name: value` (YAML) or `"name": value` (JSON) per argument, e.g. `output_dir: outputs/run`.'
    try:
        content = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: line {error.lineno}: not valid JSON ({error.msg}). {fix}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: {where}not valid YAML ({problem}). {fix}") from None
    if content is None:
        raise ConfigError(f"{path}: the file is empty. {fix}")
    if content == {}:
        raise ConfigError(f"{path}: holds no arguments. {fix}")
    if not isinstance(content, dict):
        kind = "a list" if isinstance(content, list) else f"a single value ({content!r})"
        raise ConfigError(f"{path}: holds {kind}, not a mapping of argument names to values. {fix}")
    return content


def check_negative_values(argv: list[str]) -> None:
    """`--learning_rate -1e-3`: argparse reads -1e-3 as an option; say how to write it instead of argparse's
    "expected one argument"."""
    for option, value in zip(argv, argv[1:]):
        if not (option.startswith("--") and "=" not in option and value.startswith("-")):
            continue
        try:
            float(value)
        except ValueError:
            continue
        if not ARGPARSE_NEGATIVE_NUMBER.match(value):
            raise ConfigError(
                f"{option} {value}: the command line reads {value} as an option name. Write {option}={value}."
            )


def typed_config_values(parser: HfArgumentParser, content: dict, path: str) -> dict:
    """
    `content` with text values of number fields turned into numbers: PyYAML reads `learning_rate: 1e-3` as the
    text "1e-3" (YAML 1.1 wants `1.0e-3`), and `HfArgumentParser.parse_dict`, unlike its flag parsing, converts no
    type. A value that is no number raises a ConfigError naming the file and the field.
    """
    kinds = {}
    for dataclass_type in parser.dataclass_types:
        for field in dataclasses.fields(dataclass_type):
            allowed = typing.get_args(field.type) or (field.type,)
            kinds[field.name] = next((kind for kind in (int, float) if kind in allowed), None)
    typed = dict(content)
    for name, value in content.items():
        kind = kinds.get(name)
        if kind is None or not isinstance(value, str):
            continue
        try:
            typed[name] = kind(value)
        except ValueError:
            what, example = ("an integer", "2") if kind is int else ("a number", "0.001")
            raise ConfigError(f"{path}: {name}: {value!r} is not {what} (e.g. `{name}: {example}`).") from None
    return typed


def parse_arguments(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """The argument dataclasses from flags, or from one .json/.yaml config file (its only argument); a bad value, a
    bad file or a dataclass' own check raises ConfigError (our own error classes pass through unchanged)."""
    try:
        if len(argv) == 1 and argv[0].endswith(CONFIG_SUFFIXES):
            path = os.path.abspath(argv[0])
            content = typed_config_values(parser, read_config_file(path), path)
            try:
                return parser.parse_dict(content, allow_extra_keys=False)
            except ValueError as error:
                if type(error) is not ValueError:
                    raise
                raise ConfigError(f"{argv[0]}: {error}") from error
        check_negative_values(argv)
        return parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:
        if type(error) is not ValueError:  # ConfigError and the scripts' own errors already name field and fix
            raise
        raise ConfigError(str(error)) from error


def check_training_arguments(args, model=None) -> None:
    """
    What `TrainingArguments` accepts but training only fails on later, after the data preparation or once the
    optimizer is built: batch sizes and accumulation steps below 1, a negative learning rate, an `--optim` whose
    package is missing, and values the optimizer rejects (the optimizer is built here on one dummy parameter).
    `model`: for the optimizers that need it (GaLore, LOMO).
    """
    import torch
    from transformers import Trainer

    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        value = getattr(args, name)
        if value < 1:
            raise ConfigError(f"--{name} {value}: must be at least 1.")
    optim = getattr(args.optim, "value", args.optim)
    if args.learning_rate < 0:
        raise ConfigError(f"--learning_rate {args.learning_rate}: must be positive (the optimizer would refuse it).")
    try:
        optimizer_class, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    except ImportError as error:
        raise ConfigError(f"--optim {optim}: {str(error).strip().rstrip('.')}; or pick another --optim.") from error
    if optimizer_class.__module__.startswith("torch.optim"):
        group = {"params": [torch.nn.Parameter(torch.zeros(1))], "weight_decay": args.weight_decay}
        try:
            optimizer_class([group], **kwargs)
        except ValueError as error:
            raise ConfigError(
                f"--optim {optim} refuses these settings: {error}. Check --learning_rate, --weight_decay, "
                "--adam_beta1, --adam_beta2, --adam_epsilon and --optim_args."
            ) from error


def apply_config_overrides(config, overrides: str) -> list[str]:
    """
    Applies `--config_overrides "a=1,b=false"` to `config` one field at a time with transformers' own parser (which
    types each value by the field's current value) and returns the field names; a malformed item, an unknown field
    or a value of the wrong type raises a ConfigError naming `--config_overrides` and that field.
    """
    names = []
    example = "e.g. --config_overrides num_hidden_layers=2,hidden_size=64"
    for item in overrides.split(","):
        name, equals, value = item.partition("=")
        name = name.strip()
        if not (name and equals):
            raise ConfigError(
                f"--config_overrides: {item!r} is not field=value. Separate items with commas, {example}."
            )
        if not hasattr(config, name):
            raise ConfigError(
                f"--config_overrides: {name!r} is not a field of the {config.model_type} config. Use one of its "
                f"fields (config.json), {example}."
            )
        current = type(getattr(config, name))
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(current, "a value")
        try:
            config.update_from_string(f"{name}={value.strip()}")
        except ValueError as error:
            raise ConfigError(
                f"--config_overrides: {name}={value.strip()!r}: {error}. {name} takes {kind}."
            ) from error
        names.append(name)
    return names


# Files of which a tokenizer folder holds at least one (fast or slow tokenizers, as save_pretrained writes them).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
)


def check_tokenizer_folder(source: str, option: str) -> None:
    """A local folder without tokenizer files: say so (transformers would ask to install sentencepiece instead)."""
    if os.path.isdir(source) and not any(os.path.isfile(os.path.join(source, name)) for name in TOKENIZER_FILES):
        fix = "Pass --tokenizer_name with the model's tokenizer (a folder or Hub id)"
        if option == "--tokenizer_name":
            fix = "Pass --tokenizer_name with a folder that holds one (tokenizer.json, tokenizer_config.json), or a Hub id"
        raise ConfigError(
            f"{option} {source}: no tokenizer files there (no {' or '.join(TOKENIZER_FILES[:2])}). {fix}."
        )


def looks_like_a_path(source: str) -> bool:
    """A Hub id is `name` or `owner/name`; anything else that names no existing file or folder is a missing path."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep != "/" and os.sep in source


MISSING_SOURCE_FIX = "Pass an existing folder, or a Hub id such as FacebookAI/xlm-roberta-base."


def check_source(source: str, option: str, fix: str = MISSING_SOURCE_FIX) -> None:
    """A local model/config/tokenizer folder must exist, and its weight files must be readable, before loading."""
    if os.path.isdir(source):
        from trainer.checkpoints import unreadable_files  # `trainer` only once require_own_trainer_package passed

        problems = unreadable_files(source)
        if problems:
            raise ConfigError(f"{option} {source}: unreadable files: {'; '.join(problems)}.")
    elif not os.path.exists(source) and looks_like_a_path(source):
        raise ConfigError(f"{option} {source}: no such folder ({os.path.abspath(source)}). {fix}")


def load_pretrained(load: Callable[[], object], source: str, option: str, fix: str = MISSING_SOURCE_FIX):
    """`load()` (a from_pretrained call on `source`, which `option` names) after `check_source`, with a loading
    failure turned into one ConfigError naming the option."""
    from safetensors import SafetensorError

    check_source(source, option, fix)
    try:
        return load()
    except (OSError, SafetensorError, ValueError) as error:
        local = "" if os.path.exists(source) else " (no local folder of that name, so it was looked up on the Hub)"
        raise ConfigError(f"{option} {source}{local}: {str(error).strip()}") from error


def check_sequence_length(config, length: int, option: str) -> None:
    """`option`'s `length` tokens must fit the model's positions (`usable_positions`), or the first batch that long
    fails with an index error."""
    from modeling_infoxlm import usable_positions

    positions = usable_positions(config)
    if positions is not None and length > positions:
        raise ConfigError(
            f"{option} {length}: more tokens than the model's {positions} positions "
            f"(max_position_embeddings={config.max_position_embeddings}). Pass {option} {positions} or less."
        )


def resolve_device(name: str):
    """`--device`: `auto` (cuda if available, else cpu) or a torch device name that this machine has."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name}: unknown device. Use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine. Use --device cpu (or auto).")
    return device


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


def log_to_stdout(logger: logging.Logger) -> None:
    """The evaluation scripts' logging: timestamped lines on stdout, `logger` at INFO, and transformers quiet (its
    load report would list dropped heads as "newly initialised"; the scripts say what they load themselves)."""
    import transformers

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    logger.setLevel(logging.INFO)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
