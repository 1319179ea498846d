"""The data stream's position in a checkpoint: `data_state/rank-<r>.json`, one file per rank.

Each file holds torchdata's `StatefulDataLoader.state_dict()` (the per-worker positions of `PretrainingIterator`,
which the loader collects from its worker processes) next to what that position belongs to (the data identity,
rank and world size, batch size, worker count). Resuming validates the latter against the run being resumed before
anything is restored, and names every difference. JSON, never pickle: a checkpoint folder may come from anywhere.
"""

import json
import os
from pathlib import Path

from .dataset import DATA_STATE_VERSION, data_state_differences, data_state_version_error
from .sources import DataError

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
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
