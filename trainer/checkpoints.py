"""
Checkpoint folders that are complete or absent, what InfoXLM adds to transformers' files, and finding the one to
resume from.

A checkpoint is written to `tmp-checkpoint-N` beside its final place and renamed to `checkpoint-N` only once every
file is in (weights, optimizer, scheduler, RNG states, XLCO state, `trainer_state.json`), so an interrupted save
(Ctrl-C, SIGTERM, a full disk) never leaves a `checkpoint-N` that looks resumable. transformers'
`get_last_checkpoint` and checkpoint rotation only see names matching `checkpoint-<digits>`, so they ignore
`tmp-checkpoint-N`. Folders written by other tools (or before this module existed) can still be incomplete;
`latest_complete_checkpoint` skips those with a warning naming them.

Besides transformers' files a checkpoint holds the XLCO state (`xlco_state.safetensors`: `XLCO.state_dict()`, and
`xlco_state.json`: what it belongs to) and each rank's data stream position (`data_state/rank-<r>.json`).
Safetensors and JSON, never pickle: a checkpoint folder may come from anywhere.
"""

import json
import logging
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .data import DATA_STATE_VERSION, DataError, data_state_differences, data_state_version_error
from .output_folder import STAGING_PREFIX, replace_path, write_files_atomically

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


@contextmanager
def staged_checkpoint(checkpoint: Path, writes: bool, wait_for_everyone: Callable[[], None]) -> Iterator[Path]:
    """
    The staging folder of `checkpoint` to write every file into; renamed to `checkpoint` when the block ends, and
    deleted if it raises (Ctrl-C, a full disk), so that `checkpoint` is complete or absent. `writes`: whether this
    process creates, renames and deletes folders (the main one); every process may write files into the staging
    folder between the barriers (`wait_for_everyone`).
    """
    staging = staging_folder(checkpoint)
    if writes:
        prepare_staging(staging)
    wait_for_everyone()  # every rank writes its RNG state into the staging folder: it must exist and be empty
    try:
        yield staging
        wait_for_everyone()  # every rank's files are in
        if writes:
            publish(staging, checkpoint)
    except BaseException:
        if writes and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # never leave a half-written folder behind
        raise
    wait_for_everyone()


def publish(staging: Path, checkpoint: Path) -> None:
    """Renames the complete `staging` folder to `checkpoint`, replacing an older folder of that name (moved aside
    to `tmp-checkpoint-N.replaced` meanwhile, which resuming and rotation never take for a checkpoint)."""
    replace_path(staging, checkpoint, aside=checkpoint.with_name(f"{STAGING_PREFIX}{checkpoint.name}.replaced"))


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


class ResumeCheckpoint(str):
    """The path of a checkpoint folder that `resolve_resume_checkpoint` found complete: a `str`, as transformers'
    `Trainer.train` takes it, that `InfoXLMTrainer.train` takes without resolving or checking it again."""

    @property
    def path(self) -> Path:
        return Path(self)


def resolve_resume_checkpoint(
    value: str | bool | os.PathLike | None,
    output_dir: str | os.PathLike,
    required: tuple[str, ...] = (),
) -> ResumeCheckpoint | None:
    """
    What `--resume_from_checkpoint` means: None/False/"false" → no resume; True/"true" (transformers keeps the
    command-line value as a string) → the latest complete checkpoint of `output_dir`; a path → that folder.

    One rule for damaged checkpoints (a file missing, unreadable or truncated, see `incomplete_reason`; `required`
    names files this run needs besides transformers' own): True skips them with a warning naming each one and what
    is wrong, and resumes from the latest complete one; a damaged checkpoint named explicitly is refused with a
    CheckpointError naming what is wrong and the latest complete checkpoint beside it. The one place a resume path
    is resolved and checked: a `ResumeCheckpoint` (already resolved) is returned as it is.
    """
    if isinstance(value, ResumeCheckpoint):
        return value
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
        return ResumeCheckpoint(latest)
    return ResumeCheckpoint(check_checkpoint(value, required))


# --------------------------------------------------------------------------------------------------------------------
# The XLCO state: key encoder, queue, pointer and fill count

XLCO_STATE_WEIGHTS = "xlco_state.safetensors"
XLCO_STATE_JSON = "xlco_state.json"


def xlco_state_files(objectives: list[str]) -> tuple[str, ...]:
    """Files a checkpoint holds besides transformers' own when it trains `objectives`: the XLCO state."""
    return (XLCO_STATE_WEIGHTS, XLCO_STATE_JSON) if "xlco" in objectives else ()


def save_xlco_state(folder: str | os.PathLike, xlco, global_step: int) -> None:
    """`xlco.state_dict()` → `xlco_state.safetensors`, and what it belongs to (`XLCO.describe`) →
    `xlco_state.json`, each written atomically."""
    tensors = {name: tensor.detach().contiguous() for name, tensor in xlco.state_dict().items()}
    meta = {**xlco.describe(), "global_step": global_step}
    folder = Path(folder)
    write_files_atomically(
        {
            folder / XLCO_STATE_WEIGHTS: lambda path: save_file(tensors, path, metadata={"format": "pt"}),
            folder / XLCO_STATE_JSON: lambda path: Path(path).write_text(json.dumps(meta, indent=2)),
        }
    )


def load_xlco_state(checkpoint: str | os.PathLike, xlco) -> None:
    """Restores `xlco` from a checkpoint folder; raises `CheckpointError` and changes nothing (in memory or on disk)
    if the state is missing, corrupt or does not fit this model. Reads checkpoints written before the pointer and
    fill count were tensors of the state (they were in `xlco_state.json` only)."""
    checkpoint = Path(checkpoint)
    weights, meta_path = checkpoint / XLCO_STATE_WEIGHTS, checkpoint / XLCO_STATE_JSON
    for path in (weights, meta_path):
        if not path.is_file():
            raise CheckpointError(
                f"{path} is missing: {checkpoint} was not saved by InfoXLMTrainer with XLCO on. Resume from a "
                "checkpoint of an XLCO run, or start a new run without --resume_from_checkpoint."
            )
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(weights, device="cpu")
    except (json.JSONDecodeError, SafetensorError, OSError) as error:
        raise CheckpointError(
            f"{weights} or {meta_path} is corrupt ({error}); resume from another checkpoint."
        ) from error
    for field in ("queue_pointer", "queue_filled"):
        if not isinstance(meta.get(field), int) or isinstance(meta[field], bool):
            raise CheckpointError(f"{meta_path}: {field}={meta.get(field)!r} is invalid.")
        if field not in tensors:  # the layout before the pointer and fill count were buffers
            tensors[field] = torch.tensor(meta[field], dtype=torch.long)
        elif int(tensors[field]) != meta[field]:
            raise CheckpointError(
                f"{meta_path}: {field}={meta[field]} but {weights} holds {int(tensors[field])}: the two files are "
                "from different saves; resume from another checkpoint."
            )
    try:
        xlco.load_state_dict(tensors)
    except CheckpointError as error:
        raise CheckpointError(f"{weights}: {error}") from error


# --------------------------------------------------------------------------------------------------------------------
# The data stream's position: `data_state/rank-<r>.json`, one file per rank
#
# Each file holds torchdata's `StatefulDataLoader.state_dict()` (the per-worker positions of `PretrainingIterator`,
# which the loader collects from its worker processes) next to what that position belongs to (the data identity,
# rank and world size, batch size, worker count). Resuming validates the latter against the run being resumed before
# anything is restored, and names every difference.

DATA_STATE_DIR = "data_state"


def data_state_path(checkpoint: str | os.PathLike, rank: int) -> Path:
    return Path(checkpoint, DATA_STATE_DIR, f"rank-{rank}.json")


def describe_position(
    dataset, rank: int, num_ranks: int, batch_size: int, num_workers: int, masking_seed: int
) -> dict:
    """What a position of `dataset` read by this rank's loader (collated with `masking_seed`) belongs to."""
    return {
        "version": DATA_STATE_VERSION,
        "data": dataset.identity,
        "masking_seed": masking_seed,
        "rank": [rank, num_ranks],
        "batch_size": batch_size,
        "num_workers": num_workers,
    }


def save_stream_position(loader, description: dict, checkpoint: str | os.PathLike, rank: int) -> None:
    """Writes this rank's loader position into the (staging) checkpoint folder, atomically."""
    path = data_state_path(checkpoint, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**description, "loader": loader.state_dict()})
    write_files_atomically({path: lambda temporary: Path(temporary).write_text(text)})


def load_stream_position(checkpoint: str | os.PathLike, rank: int, description: dict) -> dict:
    """This rank's saved loader state, after checking that it belongs to the data, rank layout, batch size and
    worker count of `description`. Raises DataError naming every difference, and the way out."""
    path = data_state_path(checkpoint, rank)
    if not path.is_file():
        raise DataError(
            f"{path} is missing: {checkpoint} holds no data stream position for rank {rank} (a checkpoint written "
            "before the stream position was saved, or with another number of processes). Pass --ignore_data_skip "
            "to resume the model and optimizer and restart the data stream from its beginning."
        )
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError) as error:
        raise DataError(f"{path} is corrupt ({error}); resume from another checkpoint.") from error
    version_error = data_state_version_error(saved)
    if version_error is not None:
        raise DataError(
            f"{path}: cannot continue this data stream position: {version_error}. Pass --ignore_data_skip to resume "
            "the model, optimizer and schedule and restart the data stream from its beginning."
        )
    differences = data_state_differences(saved, description)
    if differences:
        raise DataError(
            f"{path}: the saved data stream position does not belong to this run's data:\n  "
            + "\n  ".join(differences)
            + "\nResume with the same data arguments, seed, number of processes, batch size and "
            "--dataloader_num_workers, or pass --ignore_data_skip to restart the data stream from its beginning."
        )
    return saved["loader"]
