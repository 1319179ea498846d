"""The pretraining dataset: MLM blocks, TLM pairs and XLCO pairs from local files and 🤗 datasets.

    dataset, summary = build_pretraining_dataset(data_args, tokenizer, ["mlm", "tlm", "xlco"], seed=42)
    collator = InfoXLMDataCollator(tokenizer, data_args.mlm_probability, data_args.pad_to_multiple_of)
    # each item: {"mlm": {"input_ids"}, "tlm": {"input_ids"}, "xlco": {"query_input_ids", "key_input_ids"},
    #             "example_index"}

The dataset is an endless torch IterableDataset (the Trainer stops at max_steps). Every pass over a language
reshuffles it, deterministically from the seed. Its iterator saves and restores its position (`state_dict`), so a
resumed run continues where it stopped without reading the stream again (streams.py). Every (rank, DataLoader
worker) pair is one *shard* that reads and tokenizes only its own part of every language (`shard_for_rank`,
torch.utils.data.get_worker_info; how a corpus is split: streams.py), so a rank of an 8-process run does 1/8 of the
work of a single process, not all of it.

Map-style data is tokenized once and cached (tokenized_cache.py); with --streaming, or for a streamed 🤗
dataset, text is tokenized on the fly and nothing is materialised.
"""

import copy
import logging
from dataclasses import dataclass, field

import datasets
import torch

from .errors import DataError
from .hf_sources import find_hf_mono_corpora, find_hf_parallel_corpora
from .sampling import make_rng, sampling_probabilities
from .sources import MonoCorpus, ParallelCorpus, find_mono_corpora, find_parallel_corpora
from .streams import (
    ArrowBlockSegment,
    ArrowPairSegment,
    LanguageSource,
    ObjectiveStream,
    StreamBlockSegment,
    StreamPairSegment,
)
from .tokenized_cache import tokenize_corpora, tokenizer_fingerprint

logger = logging.getLogger(__name__)

OBJECTIVES = ("mlm", "tlm", "xlco")


@dataclass
class Corpora:
    """The raw corpora of a run: monolingual ones feed MLM, parallel ones feed TLM and XLCO."""

    mono: list[MonoCorpus] = field(default_factory=list)
    parallel: list[ParallelCorpus] = field(default_factory=list)


def collect_corpora(data_args, need_mono: bool = True, need_parallel: bool = True) -> Corpora:
    """Find the corpora named by the command line (files first, then 🤗 datasets). Raises DataError on bad names."""
    corpora = Corpora()
    if need_mono:
        if data_args.mono_data:
            corpora.mono += find_mono_corpora(data_args.mono_data)
        if data_args.mono_dataset_name:
            corpora.mono += find_hf_mono_corpora(
                data_args.mono_dataset_name,
                data_args.mono_dataset_configs,
                data_args.dataset_split,
                data_args.streaming,
                data_args.text_column_name,
                data_args.data_cache_dir,
            )
    if need_parallel:
        if data_args.parallel_data:
            corpora.parallel += find_parallel_corpora(data_args.parallel_data, data_args.parallel_heldout_every)
        if data_args.parallel_dataset_name:
            corpora.parallel += find_hf_parallel_corpora(
                data_args.parallel_dataset_name,
                data_args.parallel_dataset_configs,
                data_args.dataset_split,
                data_args.streaming,
                data_args.parallel_heldout_every,
                data_args.data_cache_dir,
            )
    return corpora


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


def _special_ids(tokenizer) -> tuple[int, int]:
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if bos is None or eos is None:
        raise DataError(
            f"the tokenizer ({getattr(tokenizer, 'name_or_path', '?')}) has no <s> (bos or cls) or </s> (eos or sep) "
            "token, which every example layout needs: use an XLM-R-style tokenizer (--tokenizer_name)."
        )
    return bos, eos


def _check_objectives(objectives) -> list[str]:
    objectives = list(objectives)
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if not objectives or unknown or len(set(objectives)) != len(objectives):
        raise ValueError(f"objectives must be distinct names among {list(OBJECTIVES)}, got {objectives}")
    return objectives


def build_pretraining_dataset(
    data_args, tokenizer, objectives: list[str], seed: int, corpora: Corpora | None = None
) -> tuple[PretrainingDataset, dict]:
    """The endless pretraining dataset for `objectives` (a subset of "mlm", "tlm", "xlco") and its summary.

    Every corpus is found and scanned (validated, counted) before anything is tokenized, so bad input fails
    fast with a DataError. `corpora` overrides the corpora named in `data_args` (e.g. 🤗 dataset objects built
    in code). The summary (a dict, also logged) gives examples and tokens per language and objective, the
    sampling probabilities, and what was dropped or truncated and why.
    """
    objectives = _check_objectives(objectives)
    bos, eos = _special_ids(tokenizer)
    need_mono = "mlm" in objectives
    need_parallel = "tlm" in objectives or "xlco" in objectives
    if corpora is None:
        corpora = collect_corpora(data_args, need_mono, need_parallel)
    if need_mono and not corpora.mono:
        raise DataError("objective 'mlm' needs monolingual data: pass --mono_data <files> or --mono_dataset_name.")
    if need_parallel and not corpora.parallel:
        needing = [o for o in objectives if o != "mlm"]
        raise DataError(
            f"objectives {needing} need parallel data: pass --parallel_data <files> or --parallel_dataset_name."
        )
    mono = corpora.mono if need_mono else []
    parallel = corpora.parallel if need_parallel else []
    # Scan everything first: every error (misaligned files, bad UTF-8, empty files) surfaces before any work.
    stats = {id(corpus): corpus.scan() for corpus in mono + parallel}

    max_len = data_args.max_seq_length
    segments = _make_segments(mono, parallel, stats, tokenizer, data_args, bos, eos)

    summary = {
        "seed": seed,
        "objectives": objectives,
        "max_seq_length": max_len,
        "language_sampling_alpha": data_args.language_sampling_alpha,
        "xlco_mixup": data_args.xlco_mixup,
        "tlm_both_directions": data_args.tlm_both_directions,
        "streaming": bool(data_args.streaming),
        "corpora": [_corpus_entry(c, stats[id(c)], segments[id(c)]) for c in mono + parallel],
        "notes": [],
    }
    if not need_mono and (corpora.mono or data_args.mono_data or data_args.mono_dataset_name):
        summary["notes"].append("monolingual data ignored: objective 'mlm' is not enabled")
    if not need_parallel and (corpora.parallel or data_args.parallel_data or data_args.parallel_dataset_name):
        summary["notes"].append("parallel data ignored: objectives 'tlm' and 'xlco' are not enabled")

    streams = {}
    for objective in objectives:
        group = mono if objective == "mlm" else parallel
        languages: dict[str, list] = {}
        pair_names: dict[frozenset, str] = {}  # one pair's files are pooled whatever their order (fra-eng, eng-fra)
        for corpus in group:
            key = corpus.language if objective == "mlm" else pair_names.setdefault(corpus.pair_key, corpus.pair)
            languages.setdefault(key, []).append(corpus)
        sources = [LanguageSource(name, [segments[id(c)] for c in members]) for name, members in languages.items()]
        table = {name: _language_entry(members, stats, segments, objective) for name, members in languages.items()}
        probabilities = _probabilities(table, data_args.language_sampling_alpha, objective, summary["notes"])
        for name, p in probabilities.items():
            table[name]["probability"] = p
        streams[objective] = ObjectiveStream(
            objective,
            sources,
            list(probabilities.values()),
            bos,
            eos,
            max_len,
            data_args.xlco_mixup,
            data_args.tlm_both_directions,
        )
        if objective == "xlco" and data_args.xlco_mixup:  # mixup uses two pairs per example
            for entry in table.values():
                entry["examples"] = entry["examples"] // 2 if entry["examples"] is not None else None
        summary[objective] = {"languages": table, **_totals(table)}
    summary["dropped"] = _dropped(summary["corpora"])
    logger.info("\n" + format_summary(summary))
    return PretrainingDataset(streams, seed, _identity(summary, data_args)), summary


def _identity(summary: dict, data_args) -> dict:
    """What a saved stream position depends on: the corpora of each objective and language, and every argument
    that changes the examples or their order."""
    return {
        "objectives": {
            objective: {language: entry["corpora"] for language, entry in summary[objective]["languages"].items()}
            for objective in summary["objectives"]
        },
        "max_seq_length": summary["max_seq_length"],
        "language_sampling_alpha": summary["language_sampling_alpha"],
        "xlco_mixup": summary["xlco_mixup"],
        "tlm_both_directions": summary["tlm_both_directions"],
        "streaming": summary["streaming"],
        "shuffle_buffer_size": data_args.shuffle_buffer_size,
        "parallel_heldout_every": data_args.parallel_heldout_every,
    }


def _make_segments(mono, parallel, stats, tokenizer, data_args, bos: int, eos: int) -> dict[int, object]:
    """id(corpus) -> its segment: cached Arrow segments for map-style corpora, on-the-fly ones for streamed data."""
    max_len = data_args.max_seq_length
    segments, tokenizer_hash = {}, None
    for kind, group in (("mono", mono), ("parallel", parallel)):
        cached = [c for c in group if not (data_args.streaming or c.streaming)]
        if not cached:
            continue
        tokenizer_hash = tokenizer_hash or tokenizer_fingerprint(tokenizer)  # hashing XLM-R's 17 MB takes a while
        tokenized, ranges = tokenize_corpora(
            cached,
            kind,
            tokenizer,
            [stats[id(c)].used for c in cached],
            data_args.data_cache_dir,
            data_args.preprocessing_num_workers,
            tokenizer_hash,
        )
        for corpus, (start, stop) in zip(cached, ranges):
            if kind == "mono":
                segment = ArrowBlockSegment(tokenized, start, stop, max_len, bos, eos)
            else:
                segment = ArrowPairSegment(tokenized, start, stop, max_len)
            if segment.stats["examples"] == 0:
                raise DataError(
                    f"{corpus.name}: no usable {'sentence' if kind == 'mono' else 'pair'} after tokenization (all "
                    f"{stop - start} non-blank lines give no token with this tokenizer); remove it or fix its content."
                )
            segments[id(corpus)] = segment
    buffer = data_args.shuffle_buffer_size
    for corpus in mono:
        segments.setdefault(id(corpus), StreamBlockSegment(corpus, tokenizer, max_len, bos, eos, buffer))
    for corpus in parallel:
        segments.setdefault(id(corpus), StreamPairSegment(corpus, tokenizer, buffer))
    return segments


# --------------------------------------------------------------------------------------------------------------------
# Summary


def _corpus_entry(corpus, stats, segment) -> dict:
    entry = {
        "name": corpus.name,
        "kind": corpus.kind,
        "language": corpus.language if corpus.kind == "mono" else corpus.pair,
        "lines": stats.lines,
        "used": stats.used,
        "blank": stats.blank,
        "heldout": stats.heldout if corpus.kind == "parallel" else 0,
        "tokenized": "on the fly" if isinstance(segment, (StreamBlockSegment, StreamPairSegment)) else "cached",
    }
    segment_stats = getattr(segment, "stats", None)
    entry["empty_after_tokenization"] = segment_stats["empty_after_tokenization"] if segment_stats else None
    entry["truncated"] = segment_stats["truncated"] if segment_stats else None
    return entry


def _language_entry(members, stats, segments, objective) -> dict:
    """Sentences (or pairs), tokens and examples of one language; None where unknown before reading (streaming)."""
    unit = "sentences" if objective == "mlm" else "pairs"
    entry = {unit: 0, "tokens": 0, "examples": 0, "truncated": 0, "corpora": [c.name for c in members]}
    for corpus in members:
        segment_stats = getattr(segments[id(corpus)], "stats", None)
        if segment_stats is not None:  # tokenized: exact counts
            for key in (unit, "tokens", "examples", "truncated"):
                entry[key] += segment_stats[key]
        else:  # streamed: only the line count from the scan (if any) is known
            used = stats[id(corpus)].used
            entry[unit] = None if used is None or entry[unit] is None else entry[unit] + used
            entry["tokens"] = entry["examples"] = entry["truncated"] = None
    if objective != "mlm" and entry["examples"] is not None:
        entry["examples"] = entry["pairs"]
    return entry


def _probabilities(table: dict, alpha: float, objective: str, notes: list) -> dict[str, float]:
    unit = "sentences" if objective == "mlm" else "pairs"
    sizes = {name: entry[unit] for name, entry in table.items()}
    unknown = [name for name, n in sizes.items() if n is None]
    if unknown and len(sizes) > 1:
        notes.append(f"{objective}: sizes of {unknown} unknown before reading (streamed); sampling uniformly")
        return {name: 1.0 / len(sizes) for name in sizes}
    if unknown:
        return {name: 1.0 for name in sizes}
    return sampling_probabilities(sizes, alpha)


def _sum(values):
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def _totals(table: dict) -> dict:
    return {
        "examples": _sum(entry["examples"] for entry in table.values()),
        "tokens": _sum(entry["tokens"] for entry in table.values()),
    }


def _dropped(corpora_entries: list[dict]) -> dict:
    mono = [e for e in corpora_entries if e["kind"] == "mono"]
    parallel = [e for e in corpora_entries if e["kind"] == "parallel"]
    return {
        "blank_lines": _sum(e["blank"] for e in mono),
        "blank_pairs": _sum(e["blank"] for e in parallel),
        "heldout_pairs": _sum(e["heldout"] for e in parallel),
        "empty_after_tokenization": _sum(e["empty_after_tokenization"] for e in corpora_entries),
    }


def _fmt(value, spec: str = ",") -> str:
    return "?" if value is None else format(value, spec)


def format_summary(summary: dict) -> str:
    """The summary as a readable text table (what build_pretraining_dataset logs)."""
    lines = [
        f"Pretraining data: objectives {', '.join(summary['objectives'])} | max_seq_length {summary['max_seq_length']}"
        f" | language sampling alpha {summary['language_sampling_alpha']} | seed {summary['seed']}"
        + (" | streaming" if summary["streaming"] else "")
    ]
    for objective in summary["objectives"]:
        part = summary[objective]
        unit = "sentences" if objective == "mlm" else "pairs"
        what = {"mlm": "blocks", "tlm": "pairs", "xlco": "mixup pairs" if summary["xlco_mixup"] else "pairs"}
        languages = "languages" if objective == "mlm" else "language pairs"
        lines.append(
            f"  {objective}: {len(part['languages'])} {languages}, {_fmt(part['examples'])} {what[objective]}, "
            f"{_fmt(part['tokens'])} tokens"
        )
        lines.append(f"    {'language':<12}{unit:>12}{'tokens':>14}{'examples':>11}{'truncated':>11}{'p(sample)':>11}")
        for name, entry in part["languages"].items():
            lines.append(
                f"    {name:<12}{_fmt(entry[unit]):>12}{_fmt(entry['tokens']):>14}{_fmt(entry['examples']):>11}"
                f"{_fmt(entry['truncated']):>11}{entry['probability']:>11.4f}"
            )
    dropped = summary["dropped"]
    lines.append(
        f"  dropped: {_fmt(dropped['blank_lines'])} blank lines, {_fmt(dropped['blank_pairs'])} pairs with a blank "
        f"side, {_fmt(dropped['empty_after_tokenization'])} sentences/pairs empty after tokenization; "
        f"held out for evaluation (--parallel_heldout_every): {_fmt(dropped['heldout_pairs'])} pairs"
    )
    for entry in summary["corpora"]:  # files with dropped lines (held-out pairs are a chosen split: totals only)
        reasons = []
        if entry["blank"]:
            reasons.append(f"{entry['blank']:,} blank")
        if entry["empty_after_tokenization"]:
            reasons.append(f"{entry['empty_after_tokenization']:,} empty after tokenization")
        if reasons:
            lines.append(f"    {entry['name']}: {', '.join(reasons)} (of {_fmt(entry['lines'])} lines)")
    lines.append(
        "  truncated (kept, shortened): MLM sentences longer than max_seq_length - 2; TLM pairs longer than "
        "max_seq_length - 4, whose longer side is trimmed (the XLCO column counts the same pairs)"
    )
    lines.extend(f"  note: {note}" for note in summary["notes"])
    return "\n".join(lines)


def preparation_report(summary: dict, cache_dir: str | None) -> str:
    """What a preparation-only run (`run_pretrain.py --prepare_data_only`) did, and how training reuses it."""
    cached = [entry["name"] for entry in summary["corpora"] if entry["tokenized"] == "cached"]
    streamed = len(summary["corpora"]) - len(cached)
    where = cache_dir or datasets.config.HF_DATASETS_CACHE
    return (
        f"Data prepared: {len(cached)} corpora tokenized into the cache in {where}"
        + (f"; {streamed} streamed corpora are tokenized while training (nothing to prepare)" if streamed else "")
        + ". Train with the same data arguments and --data_cache_dir: every process reads this cache (on a file "
        "system all of them see) instead of waiting for rank 0 to tokenize."
    )


# --------------------------------------------------------------------------------------------------------------------
# Held-out pairs for retrieval evaluation


def _collect_pairs(
    corpora: list[ParallelCorpus], split: str, max_pairs: int | None = None
) -> dict[str, tuple[list[str], list[str]]]:
    pairs: dict[str, tuple[list[str], list[str]]] = {}
    for corpus in corpora:
        if hasattr(corpus, "check_alignment"):
            corpus.check_alignment()
        sources, targets = pairs.setdefault(corpus.pair, ([], []))
        for batch in corpus.iter_batches(split=split):
            for src, tgt in batch:
                if max_pairs is not None and len(sources) >= max_pairs:
                    break
                sources.append(src)
                targets.append(tgt)
    return pairs


def load_parallel_pairs(
    paths: list[str], split: str = "eval", heldout_every: int = 5, max_pairs: int | None = None
) -> dict[str, tuple[list[str], list[str]]]:
    """Sentence pairs of parallel files (files, directories or globs, any --parallel_data format), per language
    pair ("fra-eng").

    split "eval": the held-out rows (i % heldout_every == 0, e.g. the Tatoeba eval split with 5); "train": the
    others; "all": every row. Pairs with a blank side are skipped; `max_pairs` keeps the first pairs of each
    language pair. Returns {pair: (sources, targets)}, aligned.
    """
    if split == "eval" and heldout_every < 2:
        raise ValueError(f"split 'eval' needs heldout_every >= 2, got {heldout_every}")
    if isinstance(paths, str):
        paths = [paths]
    return _collect_pairs(find_parallel_corpora(paths, heldout_every), split, max_pairs)


def load_heldout_pairs(data_args, tokenizer=None) -> dict[str, tuple[list[str], list[str]]]:
    """The pairs that --parallel_heldout_every keeps out of training, per language pair: {pair: (src, tgt)}.

    These are exactly the rows that build_pretraining_dataset excludes (same files, same rule). Empty when
    --parallel_heldout_every is 0. `tokenizer` is not needed (sentences are returned as text); it is accepted so
    callers can pass the same arguments as to build_pretraining_dataset.
    """
    if not data_args.parallel_heldout_every:
        logger.warning("no held-out pairs: --parallel_heldout_every is 0")
        return {}
    corpora = collect_corpora(data_args, need_mono=False, need_parallel=True)
    return _collect_pairs(corpora.parallel, "eval")
