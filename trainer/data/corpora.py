"""The corpora a run names, found by name: local files, folders and globs (`--mono_data`, `--parallel_data`) and
🤗 datasets (`--mono_dataset_name`, `--parallel_dataset_name`); and the pairs of parallel corpora held out for
evaluation (`--parallel_heldout_every`).

A misnamed or missing file, a dangling link or an unpaired Moses side is a DataError naming it and the fix, raised
before anything is read: what a file holds and whether it is valid is the readers' part (sources.py, hf_sources.py).
"""

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .hf_sources import find_hf_mono_corpora, find_hf_parallel_corpora
from .sources import (
    JSONL_NAME,
    MONO_NAMING,
    MOSES_NAME,
    PARALLEL_NAMING,
    TSV_NAME,
    DataError,
    JsonlCorpus,
    MonoCorpus,
    MosesCorpus,
    ParallelCorpus,
    TextFileCorpus,
    TsvCorpus,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# Finding files


def _is_documentation(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or name.upper().startswith(("README", "LICENSE", "LICENCE")) or name.endswith(".md")


def expand_paths(patterns: list[str], keep_in_directory, expected: str) -> list[Path]:
    """Files named by `patterns` (files, directories or globs), in order, without duplicates.

    Files inside a directory or matched by a glob are kept when `keep_in_directory(path)` is true (e.g. only
    `*.txt` for monolingual data); README/LICENSE/hidden/.md files are skipped there. Explicitly named files are
    always kept, so a misnamed file gets an error instead of being silently ignored.
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        pattern = os.path.expanduser(str(pattern))
        if glob.has_magic(pattern) or os.path.isdir(pattern):
            if glob.has_magic(pattern):
                entries = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
                if not entries:
                    raise DataError(f"no file matches {pattern!r}; check the path or the glob pattern.")
            else:
                entries = sorted(Path(pattern).iterdir())
            offered = [p for p in entries if not _is_documentation(p) and keep_in_directory(p)]
            _check_readable_entries(offered, pattern)
            kept = [p for p in offered if p.is_file()]
        elif os.path.islink(pattern):
            raise DataError(f"{pattern} is a symbolic link to {os.readlink(pattern)}, which does not exist.")
        elif os.path.isfile(pattern):
            kept = [Path(pattern)]
        else:
            raise DataError(f"{pattern} does not exist; pass existing files, directories or glob patterns.")
        if not kept:
            raise DataError(f"{pattern} holds no data file; expected {expected}.")
        found.update(dict.fromkeys(kept))
    return list(found)


def _check_readable_entries(entries: list[Path], pattern: str) -> None:
    """Every entry of a folder or glob named like a data file is used or named in an error: a dangling symbolic
    link would otherwise drop its language without a word. Sub-folders are skipped (a glob also matches folders),
    except those of a directory named like a data file (`en.txt/`)."""
    for path in entries:
        if path.is_symlink() and not path.exists():
            raise DataError(
                f"{path} (in {pattern}) is a symbolic link to {os.readlink(path)}, which does not exist: fix or "
                "remove the link, or its corpus is not trained on."
            )
        if path.is_dir() and "." in path.name.strip(".") and not glob.has_magic(pattern):
            raise DataError(
                f"{path} (in {pattern}) is a folder named like a data file: rename it, or move it out of {pattern}."
            )


def find_mono_corpora(patterns: list[str]) -> list[TextFileCorpus]:
    """Monolingual corpora for `--mono_data`: one per file, language from the file name."""
    paths = expand_paths(patterns, lambda p: p.name.endswith((".txt", ".txt.gz")), MONO_NAMING)
    return [TextFileCorpus(path) for path in paths]


def find_parallel_corpora(patterns: list[str], heldout_every: int = 0) -> list[ParallelCorpus]:
    """Parallel corpora for `--parallel_data`, in the order named. Naming one side of a Moses pair is enough.

    In a directory every file but documentation must follow the naming, so a misnamed file is reported.
    """
    corpora: list[ParallelCorpus] = []
    moses_pairs: dict[tuple, MosesCorpus] = {}  # (folder, name, l1, l2, .gz) -> corpus, so both sides make one
    for path in expand_paths(patterns, lambda p: True, PARALLEL_NAMING):
        name = path.name
        if (match := TSV_NAME.match(name)) is not None:
            corpora.append(TsvCorpus(path, match["l1"], match["l2"], heldout_every))
        elif name.endswith((".jsonl", ".jsonl.gz")):
            match = JSONL_NAME.match(name)
            l1, l2 = (match["l1"], match["l2"]) if match is not None else (None, None)
            corpora.append(JsonlCorpus(path, l1, l2, heldout_every))
        elif (match := MOSES_NAME.match(name)) is not None and match["side"] in (match["l1"], match["l2"]):
            gz = ".gz" if name.endswith(".gz") else ""
            key = (path.parent, match["name"], match["l1"], match["l2"], gz)
            if key not in moses_pairs:
                stem = path.parent / f"{match['name']}.{match['l1']}-{match['l2']}"
                src, tgt = Path(f"{stem}.{match['l1']}{gz}"), Path(f"{stem}.{match['l2']}{gz}")
                for side, other in ((src, tgt), (tgt, src)):
                    if side.is_dir():
                        raise DataError(
                            f"{side} (the aligned side of {other}) is a folder, not a file: parallel files come in "
                            f"pairs, {PARALLEL_NAMING}."
                        )
                    if not side.is_file():
                        raise DataError(
                            f"{other} has no aligned file {side}: parallel files come in pairs, {PARALLEL_NAMING}."
                        )
                moses_pairs[key] = MosesCorpus(src, tgt, match["l1"], match["l2"], heldout_every)
                corpora.append(moses_pairs[key])
        else:
            raise DataError(f"cannot derive the language pair of {path}: name parallel data {PARALLEL_NAMING}.")
    return corpora


# --------------------------------------------------------------------------------------------------------------------
# The corpora of a run


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
