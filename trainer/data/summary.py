"""The summary of the pretraining data: examples and tokens per objective and language, the sampling
probabilities, and what was dropped or truncated and why; as the dict `build_pretraining_dataset` returns, as the
text table it logs (`format_summary`), and what a `--prepare_data_only` run reports (`preparation_report`).
"""

import datasets

from .streams import StreamBlockSegment, StreamPairSegment


def corpus_entry(corpus, stats, segment) -> dict:
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


def language_entry(members, stats, segments, objective) -> dict:
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


def _sum(values):
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def objective_totals(table: dict) -> dict:
    return {
        "examples": _sum(entry["examples"] for entry in table.values()),
        "tokens": _sum(entry["tokens"] for entry in table.values()),
    }


def dropped_counts(corpora_entries: list[dict]) -> dict:
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
