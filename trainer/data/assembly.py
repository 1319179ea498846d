"""Assembling the pretraining dataset: the corpora a run names, scanned, tokenized (or streamed), laid out as
examples of each objective and sampled per language, in one `PretrainingDataset` with its summary.

Map-style data is tokenized once and cached (tokenized_cache.py); with --streaming, or for a streamed 🤗
dataset, text is tokenized on the fly and nothing is materialised.
"""

import logging

from .corpora import Corpora, collect_corpora
from .dataset import PretrainingDataset
from .sources import DataError
from .streams import (
    ArrowBlockSegment,
    ArrowPairSegment,
    LanguageSource,
    ObjectiveStream,
    StreamBlockSegment,
    StreamPairSegment,
    sampling_probabilities,
)
from .summary import corpus_entry, dropped_counts, format_summary, language_entry, objective_totals
from .tokenized_cache import tokenize_corpora, tokenizer_fingerprint

logger = logging.getLogger(__name__)

OBJECTIVES = ("mlm", "tlm", "xlco")


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
        "corpora": [corpus_entry(c, stats[id(c)], segments[id(c)]) for c in mono + parallel],
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
        table = {name: language_entry(members, stats, segments, objective) for name, members in languages.items()}
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
        summary[objective] = {"languages": table, **objective_totals(table)}
    summary["dropped"] = dropped_counts(summary["corpora"])
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
