"""
The output folder of every script (`run_pretrain.py`, `run_xnli.py`, `run_retrieval.py`, the export CLI): one rule
for a folder that already holds something, checked before anything is read at length or written.

- An `--output_dir` that is a file is refused.
- An `--output_dir` that is the folder of a model, tokenizer or checkpoint the run reads is refused: the run would
  replace what it reads.
- A folder holding a previous run of the script (the files and folders it writes, see `RunOutputs`, and leftovers of
  interrupted saves: `tmp-checkpoint-*`, `*.tmp`, safetensors' `.tmpXXXXXX`) is refused unless the run resumes it (`--resume_from_checkpoint`) or replaces
  it (`--overwrite_output_dir`). Files the script never writes (a run.yaml, notes) do not count and are never
  deleted, except for scripts whose folder must hold nothing else (`RunOutputs.others_count`).
- `--overwrite_output_dir` deletes the previous run only through `remove_previous_run`, which the scripts call once
  every check has passed (arguments, config, tokenizer, optimizer) and just before the new run writes.
"""

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

STAGING_PREFIX = "tmp-"  # `tmp-checkpoint-N` staging folders (trainer/checkpoints.py) and their `.replaced` twins
TEMPORARY_SUFFIX = ".tmp"  # atomic writes (`xlco_state.safetensors.tmp`, ...) cut short by a kill
# safetensors' `save_file` (used by save_pretrained) writes the whole file to `.tmpXXXXXX` beside it (Rust's
# `tempfile` crate), then renames it: a kill during the final save leaves that large file behind.
SAFETENSORS_TEMPORARY = re.compile(r"\.tmp[A-Za-z0-9]{6}")
# Files a training run writes at the top of its output folder.
TRAINING_RUN_FILES = (
    "trainer_state.json",
    "train_results.json",
    "eval_results.json",
    "all_results.json",
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "training_args.bin",
    "xlco_state.safetensors",
    "xlco_state.json",
)


class OutputFolderError(ValueError):
    """An `--output_dir` the run may not use as it is; the message names it and the fix."""


@dataclass(frozen=True)
class RunOutputs:
    """What a script writes at the top of its output folder, i.e. what a previous run of it left there."""

    files: tuple[str, ...] = TRAINING_RUN_FILES
    folders: tuple[str, ...] = ()
    checkpoints: bool = True  # checkpoint-N folders
    others_count: bool = False  # any other entry counts as previous content too (it is never deleted)


PRETRAINING_OUTPUTS = RunOutputs()


def _is_checkpoint(name: str) -> bool:
    prefix = f"{PREFIX_CHECKPOINT_DIR}-"
    return name.startswith(prefix) and name[len(prefix) :].isdigit()


def _is_leftover(name: str) -> bool:
    return (
        name.startswith(f"{STAGING_PREFIX}{PREFIX_CHECKPOINT_DIR}-")
        or name.endswith(TEMPORARY_SUFFIX)
        or SAFETENSORS_TEMPORARY.fullmatch(name) is not None
    )


def previous_run_files(output_dir: str | os.PathLike, outputs: RunOutputs = PRETRAINING_OUTPUTS) -> list[Path]:
    """What an earlier run of the script left in `output_dir` (and may be deleted by `remove_previous_run`)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for path in sorted(output_dir.iterdir()):
        name = path.name
        if _is_leftover(name) or (outputs.checkpoints and path.is_dir() and _is_checkpoint(name)):
            found.append(path)
        elif (path.is_dir() and name in outputs.folders) or (not path.is_dir() and name in outputs.files):
            found.append(path)
    return found


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_folder(
    output_dir: str | os.PathLike,
    *,
    reads: dict[str, str | os.PathLike | None],
    overwrite: bool,
    resuming: bool = False,
    outputs: RunOutputs = PRETRAINING_OUTPUTS,
    overwrite_flag: str | None = "--overwrite_output_dir",
    option: str = "--output_dir",
) -> list[Path]:
    """
    Checks that the run may write to `output_dir` (see the module docstring) and returns the previous run's files
    there, which `remove_previous_run` deletes when `overwrite` is set. `reads` maps each option to the local path
    (or Hub id, ignored) the run reads; `option` is how the user names the folder. Reads and checks only: raises
    OutputFolderError and changes nothing.
    """
    folder = Path(output_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{option} {output_dir}: is a file, not a folder. Pass a folder path.")
    real = Path(os.path.realpath(folder))
    local_reads = {read: Path(os.path.realpath(path)) for read, path in reads.items() if path and os.path.exists(path)}
    for read, source in local_reads.items():
        if source == real:
            raise OutputFolderError(
                f"{option} {output_dir} is the folder that {read} reads: this run would replace its files. "
                f"Pass another {option}."
            )
    previous = previous_run_files(folder, outputs)
    others = []
    if outputs.others_count and folder.is_dir():
        others = sorted(path for path in folder.iterdir() if path not in previous)
    if not (previous or others):
        return []
    if overwrite:
        for read, source in local_reads.items():
            for path in previous:
                if _inside(source, Path(os.path.realpath(path))):
                    raise OutputFolderError(
                        f"{read} {reads[read]} lies in {path}, which {overwrite_flag} would delete. Copy it elsewhere "
                        f"first, or pass another {option}."
                    )
        return previous
    if resuming and not others:
        return previous
    shown = [path.name for path in [*previous, *others]]
    names = ", ".join(shown[:6]) + (", ..." if len(shown) > 6 else "")
    what = "a run" if previous else "other files"
    fixes = ["--resume_from_checkpoint True to continue it"] if outputs.checkpoints and previous else []
    if overwrite_flag:
        replaced = "its files are deleted" if not others else "this run's files are written beside them"
        fixes.append(f"{overwrite_flag} to replace it ({replaced} once every check has passed)")
    fixes.append(f"another {option}")
    raise OutputFolderError(f"{option} {output_dir} already holds {what} ({names}). Pass {', or '.join(fixes)}.")


def remove_previous_run(output_dir: str | os.PathLike, outputs: RunOutputs = PRETRAINING_OUTPUTS) -> list[Path]:
    """Deletes what `previous_run_files` finds, so that a new run's files never sit beside an old run's. Call it only
    once the new run has passed every check and is about to write."""
    removed = previous_run_files(output_dir, outputs)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def write_files_atomically(writers: dict[str | os.PathLike, Callable[[str], object]]) -> list[str]:
    """Writes each file through `write(temporary_path)` and renames it into place, so an interrupted run never
    leaves a half-written result under its final name. `write` may also make a folder of files there (the demo
    corpus): a folder already at the path is then replaced as a whole. One writer of a path at a time (the
    temporary path is fixed, so that a later write removes what an interrupted one left). Returns the paths written,
    in order."""
    written = []
    for path, write in writers.items():
        path = os.fspath(path)
        temporary = f"{path}.tmp"
        try:
            _remove(temporary)  # left by an interrupted write: a folder would keep files the new write does not make
            write(temporary)
            replace_path(temporary, path)
        finally:
            _remove(temporary)
        written.append(path)
    return written


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def replace_path(new: str | os.PathLike, path: str | os.PathLike, aside: str | os.PathLike | None = None) -> None:
    """Renames `new` to `path`. os.replace puts a folder over an empty folder only: a previous folder at `path` is
    moved aside first (to `aside`, by default `<path>.previous.tmp`, a name every script's output-folder check knows
    as a leftover), put back if the new one cannot take its place, and deleted once it has. At every moment `path`
    is the old complete folder or the new complete one."""
    new, path = os.fspath(new), os.fspath(path)
    if not (os.path.isdir(new) and os.path.isdir(path) and not os.path.islink(path)):
        os.replace(new, path)
        return
    previous = os.fspath(aside) if aside is not None else f"{path}.previous{TEMPORARY_SUFFIX}"
    _remove(previous)
    os.replace(path, previous)
    try:
        os.replace(new, path)
    except OSError:
        os.replace(previous, path)
        raise
    _remove(previous)
