"""`PretrainingDataset`: the endless pretraining stream as a torch IterableDataset whose position can be saved and
restored, and the version and checks of that saved position.

    dataset, summary = build_pretraining_dataset(data_args, tokenizer, ["mlm", "tlm", "xlco"], seed=42)  # assembly.py
    collator = InfoXLMDataCollator(tokenizer, data_args.mlm_probability, data_args.pad_to_multiple_of)
    # each item: {"mlm": {"input_ids"}, "tlm": {"input_ids"}, "xlco": {"query_input_ids", "key_input_ids"},
    #             "example_index"}

The dataset is endless (the Trainer stops at max_steps). Every pass over a language reshuffles it, deterministically
from the seed. Its iterator saves and restores its position (`state_dict`), so a resumed run continues where it
stopped without reading the stream again (streams.py). Every (rank, DataLoader worker) pair is one *shard* that
reads and tokenizes only its own part of every language (`shard_for_rank`, torch.utils.data.get_worker_info; how a
corpus is split: streams.py), so a rank of an 8-process run does 1/8 of the work of a single process, not all of it.
"""

import copy

import torch

from .sources import DataError
from .streams import ObjectiveStream, make_rng

# 2: every (rank, worker) shard reads its own part of the corpora. 1 (before): every rank read the whole stream of
# its worker and kept one batch in R; those positions cannot be mapped onto shards (see data_state_differences).
DATA_STATE_VERSION = 2


class PretrainingDataset(torch.utils.data.IterableDataset):
    """Endless combined examples: one example of every enabled objective per item.

    Item: {"mlm": {"input_ids": list[int]}, "tlm": {"input_ids": list[int]},
           "xlco": {"query_input_ids": list[int], "key_input_ids": list[int]},
           "example_index": int} (enabled objectives only; `example_index` is the item's place in its shard's stream,
    made unique across ranks as `items * num_ranks + rank`, so a collator can seed its masking from the stream
    position: `SeededCollator` does, keyed by DataLoader worker as well).

    `iter(dataset)` is a `PretrainingIterator`, which torchdata's `StatefulDataLoader` recognises as stateful: its
    `state_dict()` is the stream position (per objective and language, the RNG states, the item count), saved per
    DataLoader worker by the loader and restored in O(1) by `load_state_dict`, without reading the stream again.
    """

    def __init__(self, streams: dict[str, ObjectiveStream], seed: int, identity: dict | None = None):
        self.streams, self.seed = streams, seed
        self.identity = {"seed": seed, **(identity or {})}
        self.rank, self.num_ranks, self.batch_size = 0, 1, 1

    def shard_for_rank(self, rank: int, num_ranks: int, batch_size: int) -> "PretrainingDataset":
        """This dataset as rank `rank` of `num_ranks` reads it: DataLoader worker `w` of `W` of this rank reads shard
        `rank * W + w` of `num_ranks * W`, a disjoint part of every language (whole reader chunks of a file or
        stream, every S-th example of a cached corpus' shuffled pass), with language draws, mixup and TLM direction
        from random streams of its own. accelerate's IterableDatasetShard would instead have every rank read and
        tokenize the whole stream and keep one batch in `num_ranks`. `batch_size` is recorded in the position."""
        shard = copy.copy(self)
        shard.rank, shard.num_ranks, shard.batch_size = rank, num_ranks, batch_size
        return shard

    def xlco_fill_dataset(self) -> "PretrainingDataset":
        """XLCO examples alone, from the same data under a seed of their own: a language order, shuffle and mixup
        independent of the training stream's, for filling the negative queue before training (the reference fills
        from a separate, unshuffled pass for the same reason: the queue must not hold the training positives)."""
        if "xlco" not in self.streams:
            raise ValueError("xlco_fill_dataset: this dataset has no XLCO stream (objective 'xlco' is not enabled).")
        seed = int(make_rng(self.seed, "xlco_queue_fill").integers(2**31))
        return PretrainingDataset({"xlco": self.streams["xlco"]}, seed, {**self.identity, "queue_fill": True})

    def __iter__(self) -> "PretrainingIterator":
        worker = torch.utils.data.get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        return PretrainingIterator(self, worker_id, num_workers)


class PretrainingIterator:
    """One shard's ((rank, DataLoader worker)'s) pass over a PretrainingDataset, with a restorable position."""

    def __init__(self, dataset: PretrainingDataset, worker_id: int, num_workers: int):
        self.dataset, self.worker_id, self.num_workers = dataset, worker_id, num_workers
        # Rank-major, so that rank 0 of a one-process run is shard 0 of 1: the single-process stream is unchanged.
        self.shard = dataset.rank * num_workers + worker_id
        self.num_shards = dataset.num_ranks * num_workers
        self.items = 0  # items of this shard read so far
        self._state: dict | None = None
        self._objectives = None  # opened on the first item, so that load_state_dict can come first

    def _open(self):
        states = (self._state or {}).get("objectives", {})
        self._objectives = {
            name: stream.iter_examples(self.dataset.seed, self.shard, self.num_shards, states.get(name))
            for name, stream in self.dataset.streams.items()
        }

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if self._objectives is None:
            self._open()
        item = {name: next(iterator) for name, iterator in self._objectives.items()}
        item["example_index"] = self.items * self.dataset.num_ranks + self.dataset.rank
        self.items += 1
        return item

    def where(self) -> dict:
        """What this position belongs to: checked against the checkpoint before anything is restored."""
        dataset = self.dataset
        return {
            "data": dataset.identity,
            "worker": [self.worker_id, self.num_workers],
            "rank": [dataset.rank, dataset.num_ranks],
            "batch_size": dataset.batch_size,
        }

    def state_dict(self) -> dict:
        objectives = self._objectives
        return {
            "version": DATA_STATE_VERSION,
            **self.where(),
            "items": self.items,
            "objectives": (
                (self._state or {}).get("objectives")
                if objectives is None
                else {name: iterator.state_dict() for name, iterator in objectives.items()}
            ),
        }

    def load_state_dict(self, state: dict) -> None:
        if self._objectives is not None:
            raise RuntimeError("load_state_dict must come before the first item is read.")
        differences = data_state_differences(state, self.where())
        if differences:  # the trainer checks before building the loader; this guards direct use
            raise DataError("the saved data position does not fit this data: " + "; ".join(differences))
        self.items = state["items"]
        self._state = state if state["objectives"] is not None else None


def data_state_version_error(saved: dict) -> str | None:
    """Why a saved data position of another layout cannot be continued (one line), or None if its layout is ours."""
    version = saved.get("version")
    if version == DATA_STATE_VERSION:
        return None
    if version == 1:
        return (
            "it was written by an older version in which every rank read the whole data stream and kept one batch "
            "in R (data state version 1); this version gives each rank and DataLoader worker its own part of every "
            "corpus (version 2), so that position does not exist here"
        )
    return f"data state version {version!r}, this code reads {DATA_STATE_VERSION}"


def data_state_differences(saved: dict, current: dict) -> list[str]:
    """What differs between a saved data position and the data it is restored into, as readable lines."""
    version_error = data_state_version_error(saved)
    if version_error is not None:
        return [version_error]
    differences = []

    def compare(path: str, old, new):
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new), key=str):
                compare(f"{path}.{key}" if path else str(key), old.get(key), new.get(key))
        elif old != new:
            differences.append(f"{path}: checkpoint {old!r}, now {new!r}")

    compare("", {k: saved.get(k) for k in current}, current)
    return differences
