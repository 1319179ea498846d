"""Raw pretraining corpora from local files: what a file holds, which language it is, and whether it is valid.

A corpus yields stripped text, never tokens. Monolingual corpora yield sentences of one language; parallel corpora
yield (source, target) pairs of one language pair. Every reader checks its input while reading and raises
`DataError` (the one exception type of the data pipeline, defined here) naming the file, the line and the fix.
`scan()` reads a corpus once up front so that bad input fails before any tokenization or training starts, and
returns the counts shown in the data summary. The naming rules live here too; corpora.py finds the files by them.

Sharding: with `num_workers > 1` shards (a run's (rank, DataLoader worker) pairs), shard `w` reads the chunks of
`SHARD_CHUNK` consecutive lines whose chunk index is `w` modulo `num_workers`. Chunks (rather than every n-th line)
keep consecutive sentences together, which is what MLM blocks are made of. `scan()` records where every chunk of an
uncompressed file starts, so a shard seeks to its own chunks and reads nothing else; in a gzipped file (no seeking)
the other lines are read but neither decoded nor tokenized.
"""

import gzip
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SHARD_CHUNK = 1000

# ISO 639-1/-3 code with optional script/region subtags: en, eng, zh-Hans, pt_BR, zh-Hant-TW.
_CODE = r"[a-z]{2,3}(?:[-_](?:[A-Z][a-z]{3}|[A-Za-z]{2}|[0-9]{3})){0,2}"
_LANGUAGE_CODE = re.compile(rf"^{_CODE}$")
_MONO_NAME = re.compile(rf"^(?:.+\.)?(?P<lang>{_CODE})\.txt(?:\.gz)?$")
# tatoeba.fra-eng.fra / tatoeba.fra-eng.eng (pair codes use '-' only between the two languages; subtags use '_').
PAIR_CODE = r"[a-z]{2,3}(?:_(?:[A-Z][a-z]{3}|[A-Za-z]{2}|[0-9]{3})){0,2}"
MOSES_NAME = re.compile(rf"^(?P<name>.+)\.(?P<l1>{PAIR_CODE})-(?P<l2>{PAIR_CODE})\.(?P<side>{PAIR_CODE})(?:\.gz)?$")
TSV_NAME = re.compile(rf"^(?:.+\.)?(?P<l1>{PAIR_CODE})-(?P<l2>{PAIR_CODE})\.tsv(?:\.gz)?$")
JSONL_NAME = re.compile(rf"^(?:.+\.)?(?P<l1>{PAIR_CODE})-(?P<l2>{PAIR_CODE})\.jsonl(?:\.gz)?$")

MONO_NAMING = "<lang>.txt or <name>.<lang>.txt, optionally gzipped (.txt.gz), e.g. en.txt, cc100.sw.txt.gz"
PARALLEL_NAMING = (
    "line-aligned pairs <name>.<l1>-<l2>.<l1> + <name>.<l1>-<l2>.<l2> (e.g. tatoeba.fra-eng.fra + "
    "tatoeba.fra-eng.eng), <name>.<l1>-<l2>.tsv with two tab-separated columns, or <name>.jsonl with rows "
    '{"translation": {"<l1>": ..., "<l2>": ...}}'
)


class DataError(ValueError):
    """Bad pretraining input: the message names the file (or dataset), the line (or row) and the fix.

    A subclass of ValueError so callers that already catch ValueError keep working.
    """


def is_language_code(code: str) -> bool:
    return bool(_LANGUAGE_CODE.match(code))


def owns_line(index: int, worker_id: int, num_workers: int) -> bool:
    """Whether line `index` belongs to this worker's shard (chunks of SHARD_CHUNK lines, round robin)."""
    return num_workers <= 1 or (index // SHARD_CHUNK) % num_workers == worker_id


def _start_row(start: dict | None) -> int:
    return 0 if start is None else int(start["row"])


def _chunks(rows: Iterator[tuple]) -> Iterator[tuple[list[tuple], dict]]:
    """Rows (index first) grouped by their SHARD_CHUNK, each group with the position {"row": first row after it}."""
    for chunk, group in itertools.groupby(rows, key=lambda row: row[0] // SHARD_CHUNK):
        yield list(group), {"row": (chunk + 1) * SHARD_CHUNK}


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of up to `size` items."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@dataclass
class CorpusStats:
    """Counts from one pass over a corpus (None when unknown, e.g. a streamed 🤗 dataset)."""

    lines: int | None = 0  # physical lines / rows
    used: int | None = 0  # sentences or pairs kept for training
    blank: int | None = 0  # blank lines, or pairs with a blank side
    heldout: int | None = 0  # pairs held out for evaluation (--parallel_heldout_every)


# --------------------------------------------------------------------------------------------------------------------
# Reading lines


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _iter_raw_lines(path: Path, start_row: int = 0) -> Iterator[bytes]:
    """Lines of a (possibly gzipped) file as bytes from line `start_row` on, turning decompression errors into
    DataError. Skipped lines are neither decoded nor checked (a resumed stream has read them before)."""
    try:
        with _open_binary(path) as f:
            yield from itertools.islice(f, start_row, None)
    except GeneratorExit:  # closed early, possibly at interpreter exit when module globals are already gone
        raise
    except (gzip.BadGzipFile, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise DataError(f"{path} does not exist; check the path.") from e
        raise DataError(f"{path}: cannot read it ({e}); check that it is a valid text or .gz file.") from e


def decode_line(raw: bytes, path, index: int, strip: bool = True) -> str:
    """UTF-8 text of one line, stripped (else without its line ending). `index` is 0-based; messages say line
    `index + 1`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}, line {index + 1}: invalid UTF-8 ({e.reason} at byte {e.start} of the line). "
            "Re-encode the file as UTF-8 (e.g. `iconv -f <encoding> -t UTF-8`) or remove the line."
        ) from None
    if index == 0 and text.startswith("\ufeff"):  # a UTF-8 byte-order mark is not part of the first sentence
        text = text[1:]
    return text.strip() if strip else text.rstrip("\r\n")


def chunk_starts(path: Path) -> tuple[int, list[int]] | None:
    """(SHARD_CHUNK, byte offset of the first line of every chunk) of an uncompressed file; None for a gzipped one,
    which cannot be entered in the middle."""
    if path.suffix == ".gz":
        return None
    starts, position = [], 0
    for index, raw in enumerate(_iter_raw_lines(path)):
        if index % SHARD_CHUNK == 0:
            starts.append(position)
        position += len(raw)
    return SHARD_CHUNK, starts


def _owned_raw_lines(path: Path, starts, start_row: int, worker_id: int, num_workers: int):
    """(line index, bytes) of this shard's lines from line `start_row` on. With the `chunk_starts` of the file, only
    its own chunks are read; otherwise every line is read and the others are skipped undecoded."""
    if starts is None or num_workers <= 1 or starts[0] != SHARD_CHUNK:
        for index, raw in enumerate(_iter_raw_lines(path, start_row), start_row):
            if owns_line(index, worker_id, num_workers):
                yield index, raw
        return
    chunk_size, offsets = starts
    try:
        with open(path, "rb") as f:
            for chunk in range(start_row // chunk_size, len(offsets)):
                if chunk % num_workers != worker_id:
                    continue
                f.seek(offsets[chunk])
                for index, raw in enumerate(itertools.islice(f, chunk_size), chunk * chunk_size):
                    if index >= start_row:
                        yield index, raw
    except FileNotFoundError as e:
        raise DataError(f"{path} does not exist; check the path.") from e


def count_lines(path: Path) -> int:
    return sum(1 for _ in _iter_raw_lines(path))


def file_fingerprint(path: Path) -> list:
    """Identity of a file for cache keys: a changed file gets re-tokenized."""
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def _check_not_empty(name, stats: CorpusStats, what: str) -> CorpusStats:
    if stats.lines == 0:
        raise DataError(f"{name} is empty; remove it from the {what} or fill it (one sentence per line).")
    if stats.used == 0:
        reasons = [f"{stats.blank} blank"]
        if stats.heldout:
            reasons.append(f"{stats.heldout} held out by --parallel_heldout_every")
        raise DataError(
            f"{name} has no usable line after filtering ({stats.lines} lines: {', '.join(reasons)}); "
            f"remove it from the {what} or fix its content."
        )
    return stats


# --------------------------------------------------------------------------------------------------------------------
# Monolingual corpora


class MonoCorpus:
    """Sentences of one language. Subclasses implement `iter_lines`."""

    kind = "mono"
    language: str
    name: str
    streaming = False  # True when the source can only be read front to back (a streamed 🤗 dataset)

    def iter_lines(self, worker_id: int = 0, num_workers: int = 1, start_row: int = 0) -> Iterator[tuple[int, str]]:
        """(line index, stripped text) for every line of this worker's shard from line `start_row` on, blank lines
        included."""
        raise NotImplementedError

    def iter_row_chunks(self, worker_id: int = 0, num_workers: int = 1, start: dict | None = None):
        """iter_lines' rows grouped per chunk of SHARD_CHUNK lines, each group with the reader position after it (a
        small JSON-able dict; pass it as `start` to read on from there)."""
        return _chunks(self.iter_lines(worker_id, num_workers, _start_row(start)))

    def iter_chunks(self, worker_id: int = 0, num_workers: int = 1, start: dict | None = None):
        """This worker's non-blank sentences, one list per chunk, with the reader position after it."""
        for rows, position in self.iter_row_chunks(worker_id, num_workers, start):
            yield [text for _, text in rows if text], position

    def iter_batches(self, batch_size: int = 1000, worker_id: int = 0, num_workers: int = 1) -> Iterator[list[str]]:
        """Non-blank sentences of this worker's shard, in order, in lists of up to `batch_size`."""
        yield from batched((text for _, text in self.iter_lines(worker_id, num_workers) if text), batch_size)

    def scan(self) -> CorpusStats:
        """Read everything once: validate and count. Raises DataError on bad or empty input."""
        stats = CorpusStats()
        for _, text in self.iter_lines():
            stats.lines += 1
            if not text:
                stats.blank += 1
        stats.used = stats.lines - stats.blank
        return _check_not_empty(self.name, stats, "monolingual data")

    def fingerprint(self) -> list:
        raise NotImplementedError


class TextFileCorpus(MonoCorpus):
    """One `<lang>.txt` (or `.txt.gz`) file: one sentence per line."""

    def __init__(self, path, language: str | None = None):
        self.path = Path(path)
        self.name = str(path)
        self.language = language or mono_language(self.path)
        self.starts = None  # chunk_starts, from scan()

    def scan(self):
        self.starts = chunk_starts(self.path)
        return super().scan()

    def iter_lines(self, worker_id=0, num_workers=1, start_row=0):
        for index, raw in _owned_raw_lines(self.path, self.starts, start_row, worker_id, num_workers):
            yield index, decode_line(raw, self.path, index)

    def fingerprint(self):
        return ["text", self.language, *file_fingerprint(self.path)]

    def __repr__(self):
        return f"TextFileCorpus({self.name!r}, language={self.language!r})"


def mono_language(path: Path) -> str:
    match = _MONO_NAME.match(path.name)
    if match is None:
        raise DataError(
            f"cannot derive a language code from the file name {path}: name monolingual files {MONO_NAMING} "
            "(ISO 639-1 or 639-3 codes)."
        )
    return match.group("lang")


# --------------------------------------------------------------------------------------------------------------------
# Parallel corpora


class ParallelCorpus:
    """Translation pairs of one language pair. Subclasses implement `iter_rows`.

    Row i (0-based, blank rows included) is held out for evaluation when `heldout_every` > 0 and
    i % heldout_every == 0: it never reaches training (split "train") and is what split "eval" returns.
    """

    kind = "parallel"
    src_lang: str
    tgt_lang: str
    name: str
    heldout_every: int = 0
    streaming = False

    @property
    def pair(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"

    @property
    def pair_key(self) -> frozenset:
        """The language pair whatever the order of its sides: files of fra-eng and eng-fra are one pair's data."""
        return frozenset((self.src_lang, self.tgt_lang))

    def iter_rows(
        self, worker_id: int = 0, num_workers: int = 1, start_row: int = 0
    ) -> Iterator[tuple[int, str, str]]:
        """(row index, source, target), stripped, for every row of this worker's shard from row `start_row` on,
        blank ones included."""
        raise NotImplementedError

    def iter_row_chunks(self, worker_id: int = 0, num_workers: int = 1, start: dict | None = None):
        """iter_rows' rows grouped per chunk of SHARD_CHUNK rows, with the reader position after each (see
        MonoCorpus.iter_row_chunks)."""
        return _chunks(self.iter_rows(worker_id, num_workers, _start_row(start)))

    def iter_chunks(self, worker_id: int = 0, num_workers: int = 1, start: dict | None = None):
        """This worker's training pairs, one list per chunk, with the reader position after it."""
        for rows, position in self.iter_row_chunks(worker_id, num_workers, start):
            yield [(src, tgt) for index, src, tgt in rows if self._in_split(index, src, tgt, "train")], position

    def _is_heldout(self, index: int) -> bool:
        return self.heldout_every > 0 and index % self.heldout_every == 0

    def _in_split(self, index: int, src: str, tgt: str, split: str) -> bool:
        """Whether row `index` is a pair (both sides non-blank) of `split`: "train", "eval" (held out) or "all"."""
        return bool(src and tgt) and (split == "all" or self._is_heldout(index) == (split == "eval"))

    def iter_batches(
        self, batch_size: int = 1000, worker_id: int = 0, num_workers: int = 1, split: str = "train"
    ) -> Iterator[list[tuple[str, str]]]:
        """Pairs with both sides non-blank, of `split` ("train", "eval" = held out, or "all"), in batches."""
        if split not in ("train", "eval", "all"):
            raise ValueError(f"split must be 'train', 'eval' or 'all', got {split!r}")
        rows = (
            (src, tgt)
            for index, src, tgt in self.iter_rows(worker_id, num_workers)
            if self._in_split(index, src, tgt, split)
        )
        yield from batched(rows, batch_size)

    def scan(self) -> CorpusStats:
        stats = CorpusStats()
        for index, src, tgt in self.iter_rows():
            stats.lines += 1
            if not src or not tgt:
                stats.blank += 1
            elif self._is_heldout(index):
                stats.heldout += 1
        stats.used = stats.lines - stats.blank - stats.heldout
        return _check_not_empty(self.name, stats, "parallel data")

    def fingerprint(self) -> list:
        raise NotImplementedError


class MosesCorpus(ParallelCorpus):
    """Two line-aligned files `<name>.<l1>-<l2>.<l1>` and `<name>.<l1>-<l2>.<l2>` (Tatoeba, OPUS Moses downloads)."""

    def __init__(self, src_path, tgt_path, src_lang: str, tgt_lang: str, heldout_every: int = 0):
        self.src_path, self.tgt_path = Path(src_path), Path(tgt_path)
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.heldout_every = heldout_every
        self.name = f"{src_path} + {tgt_path}"
        self.starts = (None, None)  # chunk_starts of both files, from scan()

    def check_alignment(self):
        src_lines, tgt_lines = count_lines(self.src_path), count_lines(self.tgt_path)
        if src_lines != tgt_lines:
            raise DataError(
                f"parallel files are not line-aligned: {self.src_path} has {src_lines} lines but {self.tgt_path} "
                f"has {tgt_lines}. Line i of one must translate line i of the other; re-export the pair "
                "(e.g. from OPUS in Moses format) or fix the files."
            )

    def scan(self):
        # Count first (cheap, no decoding) so a misaligned pair fails before anything else is read.
        self.check_alignment()
        self.starts = (chunk_starts(self.src_path), chunk_starts(self.tgt_path))
        return super().scan()

    def iter_rows(self, worker_id=0, num_workers=1, start_row=0):
        sides = [
            _owned_raw_lines(path, starts, start_row, worker_id, num_workers)
            for path, starts in zip((self.src_path, self.tgt_path), self.starts)
        ]
        for src, tgt in itertools.zip_longest(*sides):
            if src is None or tgt is None:  # one file is longer (scan() catches this before training starts)
                self.check_alignment()  # raises, naming both files and counts
            index = src[0]
            yield index, decode_line(src[1], self.src_path, index), decode_line(tgt[1], self.tgt_path, index)

    def fingerprint(self):
        return ["moses", self.heldout_every, *file_fingerprint(self.src_path), *file_fingerprint(self.tgt_path)]

    def __repr__(self):
        return f"MosesCorpus({self.name!r}, pair={self.pair!r})"


class TsvCorpus(ParallelCorpus):
    """`<name>.<l1>-<l2>.tsv`: one pair per line, source and target separated by one tab."""

    def __init__(self, path, src_lang: str, tgt_lang: str, heldout_every: int = 0):
        self.path = Path(path)
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.heldout_every = heldout_every
        self.name = str(path)
        self.starts = None  # chunk_starts, from scan()

    def scan(self):
        self.starts = chunk_starts(self.path)
        return super().scan()

    def iter_rows(self, worker_id=0, num_workers=1, start_row=0):
        for index, raw in _owned_raw_lines(self.path, self.starts, start_row, worker_id, num_workers):
            # Strip only the line ending: an empty column must stay a column.
            line = decode_line(raw, self.path, index, strip=False)
            if not line.strip():
                yield index, "", ""
                continue
            columns = line.split("\t")
            if len(columns) != 2:
                raise DataError(
                    f"{self.path}, line {index + 1}: expected 2 tab-separated columns ({self.src_lang}<TAB>"
                    f"{self.tgt_lang}), found {len(columns)}. Remove tabs inside sentences or fix the line."
                )
            yield index, columns[0].strip(), columns[1].strip()

    def fingerprint(self):
        return ["tsv", self.src_lang, self.tgt_lang, self.heldout_every, *file_fingerprint(self.path)]

    def __repr__(self):
        return f"TsvCorpus({self.name!r}, pair={self.pair!r})"


class JsonlCorpus(ParallelCorpus):
    """JSON lines `{"translation": {"<l1>": ..., "<l2>": ...}}`, the 🤗 `Translation` feature's layout.

    The language pair comes from the file name (`<name>.<l1>-<l2>.jsonl`) or else from the keys of the first row.
    """

    def __init__(self, path, src_lang: str | None = None, tgt_lang: str | None = None, heldout_every: int = 0):
        self.path = Path(path)
        self.name = str(path)
        self.heldout_every = heldout_every
        if src_lang is None or tgt_lang is None:
            src_lang, tgt_lang = self._languages_from_first_row()
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.starts = None  # chunk_starts, from scan()

    def scan(self):
        self.starts = chunk_starts(self.path)
        return super().scan()

    def _parse(self, raw: bytes, index: int) -> dict | None:
        line = decode_line(raw, self.path, index)
        if not line:
            return None
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{self.path}, line {index + 1}: invalid JSON ({e.msg}); fix or remove the line."
            ) from None
        translation = row.get("translation") if isinstance(row, dict) else None
        if not isinstance(translation, dict):
            raise DataError(
                f'{self.path}, line {index + 1}: expected an object {{"translation": {{"<l1>": ..., "<l2>": ...}}}}, '
                f"got {line[:80]!r}."
            )
        return translation

    def _languages_from_first_row(self) -> tuple[str, str]:
        for index, raw in enumerate(_iter_raw_lines(self.path)):
            translation = self._parse(raw, index)
            if translation is None:
                continue
            keys = list(translation)
            if len(keys) != 2 or not all(is_language_code(k) for k in keys):
                raise DataError(
                    f"{self.path}, line {index + 1}: cannot tell the language pair from the keys {keys}; name the "
                    "file <name>.<l1>-<l2>.jsonl to pick two languages."
                )
            return keys[0], keys[1]
        raise DataError(f"{self.path} is empty (no JSON row); remove it from the parallel data or fill it.")

    def iter_rows(self, worker_id=0, num_workers=1, start_row=0):
        for index, raw in _owned_raw_lines(self.path, self.starts, start_row, worker_id, num_workers):
            translation = self._parse(raw, index)
            if translation is None:
                yield index, "", ""
                continue
            sides = []
            for lang in (self.src_lang, self.tgt_lang):
                if lang not in translation:
                    raise DataError(
                        f'{self.path}, line {index + 1}: missing language key {lang!r} in "translation" (keys: '
                        f"{sorted(translation)}); every row needs both {self.src_lang!r} and {self.tgt_lang!r}."
                    )
                text = translation[lang]
                if text is not None and not isinstance(text, str):
                    raise DataError(
                        f"{self.path}, line {index + 1}: translation[{lang!r}] must be a string, got "
                        f"{type(text).__name__}."
                    )
                sides.append((text or "").strip())
            yield index, sides[0], sides[1]

    def fingerprint(self):
        return ["jsonl", self.src_lang, self.tgt_lang, self.heldout_every, *file_fingerprint(self.path)]

    def __repr__(self):
        return f"JsonlCorpus({self.name!r}, pair={self.pair!r})"
