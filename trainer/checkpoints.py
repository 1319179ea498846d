"""
Checkpoint folders that are complete or absent, and finding the one to resume from.

A checkpoint is written to `tmp-checkpoint-N` beside its final place and renamed to `checkpoint-N` only once every
file is in (weights, optimizer, scheduler, RNG states, XLCO state, `trainer_state.json`), so an interrupted save
(Ctrl-C, SIGTERM, a full disk) never leaves a `checkpoint-N` that looks resumable. transformers'
`get_last_checkpoint` and checkpoint rotation only see names matching `checkpoint-<digits>`, so they ignore
`tmp-checkpoint-N`. Folders written by other tools (or before this module existed) can still be incomplete;
`latest_complete_checkpoint` skips those with a warning naming them.
"""

import json
import logging
import os
import re
import shutil
import zipfile
from pathlib import Path

from safetensors import SafetensorError, safe_open
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .output_folder import STAGING_PREFIX

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"  # written last by every checkpoint save of transformers
STAGING_CHECKPOINT = f"{STAGING_PREFIX}{PREFIX_CHECKPOINT_DIR}-"
CHECKPOINT_PATTERN = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file and what to do."""


def staging_folder(checkpoint: str | os.PathLike) -> Path:
    """Where `checkpoint` is written before it is renamed into place: `tmp-checkpoint-N` beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(STAGING_PREFIX + checkpoint.name)


def prepare_staging(staging: Path) -> None:
    """An empty staging folder; a leftover of an earlier interrupted save at the same step is discarded."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)


def publish(staging: Path, checkpoint: Path) -> None:
    """Renames the complete `staging` folder to `checkpoint`, replacing an older folder of that name."""
    if checkpoint.exists():
        # A rename cannot replace a non-empty folder: move the old one aside first, so that `checkpoint` is at
        # every moment either the old complete folder or the new complete one.
        replaced = checkpoint.with_name(f"{STAGING_PREFIX}{checkpoint.name}.replaced")
        if replaced.exists():
            shutil.rmtree(replaced)
        os.rename(checkpoint, replaced)
        os.rename(staging, checkpoint)
        shutil.rmtree(replaced)
    else:
        os.rename(staging, checkpoint)


def step_of(checkpoint: str | os.PathLike) -> int | None:
    match = CHECKPOINT_PATTERN.match(Path(checkpoint).name)
    return int(match.group(1)) if match else None


# What an exact resume reads besides `trainer_state.json`: without them transformers resumes with a fresh optimizer,
# scheduler or RNG and says nothing (any one of the alternatives of each group is enough).
RESUME_FILES = (
    ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin"),
    ("optimizer.pt",),
    ("scheduler.pt",),
    ("rng_state.pth", "rng_state_0.pth"),
)


def incomplete_reason(checkpoint: str | os.PathLike, required: tuple[str, ...] = ()) -> str | None:
    """
    Why `checkpoint` cannot be resumed from exactly (None if it can): `trainer_state.json` (written last) missing or
    unreadable, a file of `RESUME_FILES` or of `required` (e.g. the XLCO state) missing, or a weight/state file
    truncated or corrupt. The one rule for damaged checkpoints uses it (`resolve_resume_checkpoint`).
    """
    checkpoint = Path(checkpoint)
    state = checkpoint / TRAINER_STATE_NAME
    if not state.is_file():
        return f"it has no {TRAINER_STATE_NAME}, which the Trainer writes last (its save was interrupted)"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"its {TRAINER_STATE_NAME} is unreadable ({error})"
    groups = [*RESUME_FILES, *((name,) for name in required)]
    missing = [group[0] for group in groups if not any((checkpoint / name).is_file() for name in group)]
    if missing:
        return (
            f"it lacks {', '.join(missing)}, which an exact resume needs (a save cut short, --save_only_model, or "
            "a run with other settings)"
        )
    problems = unreadable_files(checkpoint)
    if problems:
        return f"it holds unreadable files ({'; '.join(problems)})"
    return None


def unreadable_files(folder: str | os.PathLike) -> list[str]:
    """
    `file: reason` for each weight or state file of `folder` that is truncated or corrupt: every `*.safetensors`
    header and every torch zip archive (`*.pt`, `*.pth`, `*.bin`) is opened, which is cheap (no tensor is read).
    """
    problems = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        if path.suffix == ".safetensors":
            try:
                with safe_open(path, framework="pt") as handle:
                    handle.keys()
            except (SafetensorError, OSError) as error:
                problems.append(f"{path}: {error}")
        elif path.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(path):
            problems.append(f"{path}: not a complete torch archive (truncated?)")
    return problems


def check_checkpoint(checkpoint: str | os.PathLike, required: tuple[str, ...] = ()) -> Path:
    """`checkpoint` as a Path if an exact resume can start from it; else a CheckpointError naming what is wrong and
    the latest checkpoint beside it that is complete."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise CheckpointError(
            f"--resume_from_checkpoint {checkpoint}: no such folder. Pass a checkpoint-N folder of the run, or "
            "True to resume from its latest complete checkpoint."
        )
    reason = incomplete_reason(checkpoint, required)
    if reason is not None:
        latest, _ = latest_complete_checkpoint(checkpoint.parent, warn=False, required=required)
        hint = (
            f"resume from {latest} (the latest complete checkpoint), or pass --resume_from_checkpoint True"
            if latest is not None
            else "there is no complete checkpoint beside it; start a new run"
        )
        raise CheckpointError(f"{checkpoint} is incomplete: {reason}. Do not resume from it: {hint}.")
    return checkpoint


def latest_complete_checkpoint(
    output_dir: str | os.PathLike, warn: bool = True, required: tuple[str, ...] = ()
) -> tuple[Path | None, list[Path]]:
    """
    The `checkpoint-N` folder of `output_dir` with the largest N that is complete (`incomplete_reason`), and the
    folders passed over on the way (damaged ones, and `tmp-checkpoint-N` leftovers of interrupted saves), each
    named in a warning.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None, []
    candidates = sorted(
        (path for path in output_dir.iterdir() if path.is_dir() and step_of(path) is not None),
        key=step_of,
        reverse=True,
    )
    skipped = sorted(
        path for path in output_dir.iterdir() if path.is_dir() and path.name.startswith(STAGING_CHECKPOINT)
    )
    if warn:
        for path in skipped:
            logger.warning(f"Ignoring {path}: a checkpoint save that was interrupted (safe to delete).")
    for checkpoint in candidates:
        reason = incomplete_reason(checkpoint, required)
        if reason is None:
            return checkpoint, skipped
        skipped.append(checkpoint)
        if warn:
            logger.warning(f"Skipping {checkpoint}: {reason}.")
    return None, skipped


def resolve_resume_checkpoint(
    value: str | bool | None, output_dir: str | os.PathLike, required: tuple[str, ...] = ()
) -> str | None:
    """
    What `--resume_from_checkpoint` means: None/False/"false" → no resume; True/"true" (transformers keeps the
    command-line value as a string) → the latest complete checkpoint of `output_dir`; a path → that folder.

    One rule for damaged checkpoints (a file missing, unreadable or truncated, see `incomplete_reason`; `required`
    names files this run needs besides transformers' own): True skips them with a warning naming each one and what
    is wrong, and resumes from the latest complete one; a damaged checkpoint named explicitly is refused with a
    CheckpointError naming what is wrong and the latest complete checkpoint beside it.
    """
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("", "false")):
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        latest, skipped = latest_complete_checkpoint(output_dir, required=required)
        if latest is None:
            reasons = [f"{path.name}: {incomplete_reason(path, required) or 'a save cut short'}" for path in skipped]
            found = f" (only incomplete ones: {'; '.join(reasons[:3])})" if skipped else ""
            raise CheckpointError(
                f"--resume_from_checkpoint True: no complete checkpoint-N folder in {output_dir}{found}. Start a "
                "new run without --resume_from_checkpoint."
            )
        logger.info(f"Resuming from {latest}, the latest complete checkpoint of {output_dir}.")
        return str(latest)
    return str(check_checkpoint(value, required))
