"""Raw pretraining corpora from 🤗 datasets: a text column (MLM) or a `translation` column (TLM, XLCO).

Map-style (`datasets.Dataset`) and streamed (`datasets.IterableDataset`) datasets behave like the local files of
`sources.py`: same interface, same blank-line and held-out filtering, same chunked worker sharding. A streamed
dataset is never materialised: it is read batch by batch with `IterableDataset.iter`, which (unlike plain
iteration) does not re-shard across DataLoader workers behind our back.
"""

from pathlib import Path

import datasets

from .sources import SHARD_CHUNK, CorpusStats, DataError, MonoCorpus, ParallelCorpus, is_language_code


def _iter_chunks(dataset, columns: list[str], worker_id: int, num_workers: int, start: dict | None = None):
    """(first row index, {column: values}, position after the chunk) for this worker's chunks of SHARD_CHUNK rows,
    from the position `start` on (a position this function yielded, or None for the beginning)."""
    first_chunk = 0 if start is None else int(start["row"]) // SHARD_CHUNK
    if isinstance(dataset, datasets.Dataset):
        dataset = dataset.select_columns(columns)
        for chunk in range(first_chunk, -(-len(dataset) // SHARD_CHUNK)):
            if num_workers <= 1 or chunk % num_workers == worker_id:
                rows = dataset[chunk * SHARD_CHUNK : (chunk + 1) * SHARD_CHUNK]
                yield chunk * SHARD_CHUNK, rows, {"row": (chunk + 1) * SHARD_CHUNK}
    else:
        # Streaming: every worker reads the stream, but only decodes / tokenizes its own chunks. The position holds
        # the stream's own `state_dict()`: a resume re-opens the stream there (datasets skips read shards and
        # slices the current one in Arrow) instead of reading and discarding every row before it.
        dataset = dataset.select_columns(columns)
        if start is not None:
            dataset.load_state_dict(start["stream"])
        for chunk, batch in enumerate(dataset.iter(batch_size=SHARD_CHUNK), first_chunk):
            if num_workers <= 1 or chunk % num_workers == worker_id:
                position = {"row": (chunk + 1) * SHARD_CHUNK, "stream": dataset.state_dict()}
                yield chunk * SHARD_CHUNK, batch, position


def _rows_from(corpus, worker_id: int, num_workers: int, start_row: int):
    """iter_lines / iter_rows of a 🤗 corpus: the rows of its `iter_row_chunks`, from row `start_row` on."""
    start = None
    if start_row:
        if corpus.streaming:  # only a position saved while reading can re-open a stream (it holds its state)
            raise ValueError(f"{corpus.name}: a streamed dataset resumes only from a position that iter_chunks gave.")
        start = {"row": start_row}
    for rows, _ in corpus.iter_row_chunks(worker_id, num_workers, start):
        yield from rows


def _known_num_rows(dataset) -> int | None:
    if isinstance(dataset, datasets.Dataset):
        return len(dataset)
    splits = dataset.info.splits if dataset.info is not None else None
    split = getattr(dataset, "split", None)
    if splits and split is not None and str(split) in splits:
        return splits[str(split)].num_examples or None
    return None


def _dataset_fingerprint(dataset) -> str:
    fingerprint = getattr(dataset, "_fingerprint", None)
    if fingerprint is None:
        raise ValueError("only map-style datasets (with a fingerprint) can be cached")
    return fingerprint


class HFTextCorpus(MonoCorpus):
    """Sentences of one language from a text column of a 🤗 dataset."""

    def __init__(self, dataset, language: str, text_column: str | None = None, name: str | None = None):
        self.dataset = dataset
        self.language = language
        self.name = name or f"🤗 dataset ({language})"
        self.streaming = not isinstance(dataset, datasets.Dataset)
        self.text_column = text_column or self._default_text_column()

    def _default_text_column(self) -> str:
        features = self.dataset.features
        if features is None or "text" in features:  # a stream without schema: checked when read
            return "text"
        strings = [
            k for k, v in features.items() if isinstance(v, datasets.Value) and v.dtype in ("string", "large_string")
        ]
        if len(strings) == 1:
            return strings[0]
        raise DataError(
            f"{self.name}: cannot tell which column holds the text (columns: {list(features)}); "
            "pass --text_column_name."
        )

    def iter_lines(self, worker_id=0, num_workers=1, start_row=0):
        return _rows_from(self, worker_id, num_workers, start_row)

    def iter_row_chunks(self, worker_id=0, num_workers=1, start=None):
        if self.dataset.features is not None and self.text_column not in self.dataset.features:
            raise DataError(
                f"{self.name}: no column {self.text_column!r} (columns: {list(self.dataset.features)}); "
                "pass the right --text_column_name."
            )
        for first, batch, position in _iter_chunks(self.dataset, [self.text_column], worker_id, num_workers, start):
            if self.text_column not in batch:
                raise DataError(
                    f"{self.name}: no column {self.text_column!r} (columns: {list(batch)}); "
                    "pass the right --text_column_name."
                )
            rows = []
            for offset, text in enumerate(batch[self.text_column]):
                if text is not None and not isinstance(text, str):
                    raise DataError(
                        f"{self.name}, row {first + offset}: column {self.text_column!r} must hold strings, got "
                        f"{type(text).__name__}; pass the right --text_column_name."
                    )
                rows.append((first + offset, (text or "").strip()))
            yield rows, position

    def scan(self) -> CorpusStats:
        if self.streaming:  # reading a stream up front would defeat streaming: sizes from the dataset card if any
            rows = _known_num_rows(self.dataset)
            return CorpusStats(lines=rows, used=rows, blank=None, heldout=None)
        return super().scan()

    def fingerprint(self):
        return ["hf-text", self.language, self.text_column, _dataset_fingerprint(self.dataset)]

    def __repr__(self):
        return f"HFTextCorpus({self.name!r}, language={self.language!r})"


class HFTranslationCorpus(ParallelCorpus):
    """Pairs from a 🤗 dataset with a `translation` column of {l1: text, l2: text} rows."""

    def __init__(
        self,
        dataset,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        heldout_every: int = 0,
        name: str | None = None,
        column: str = "translation",
    ):
        self.dataset = dataset
        self.column = column
        self.heldout_every = heldout_every
        self.streaming = not isinstance(dataset, datasets.Dataset)
        self.name = name or "🤗 translation dataset"
        features = dataset.features or {}
        if features and column not in features:
            raise DataError(
                f"{self.name}: no {column!r} column (columns: {list(features)}); parallel 🤗 datasets need rows "
                '{"translation": {"<l1>": ..., "<l2>": ...}}.'
            )
        if src_lang is None or tgt_lang is None:
            src_lang, tgt_lang = self._languages(features.get(column))
        self.src_lang, self.tgt_lang = src_lang, tgt_lang

    def _languages(self, feature) -> tuple[str, str]:
        if isinstance(feature, datasets.Translation):
            languages = list(feature.languages)
        elif isinstance(feature, dict):
            languages = list(feature)
        else:  # no schema (some streamed datasets): look at the first row
            first = next(iter(self.dataset.take(1)), None)
            languages = list((first or {}).get(self.column) or {})
        if len(languages) != 2 or not all(is_language_code(lang) for lang in languages):
            raise DataError(
                f"{self.name}: cannot tell the language pair from the {self.column!r} keys {languages}; "
                "use a dataset (or config) with exactly two languages."
            )
        return languages[0], languages[1]

    def iter_rows(self, worker_id=0, num_workers=1, start_row=0):
        return _rows_from(self, worker_id, num_workers, start_row)

    def iter_row_chunks(self, worker_id=0, num_workers=1, start=None):
        for first, batch, position in _iter_chunks(self.dataset, [self.column], worker_id, num_workers, start):
            rows = []
            for offset, translation in enumerate(batch[self.column]):
                index = first + offset
                if not isinstance(translation, dict):
                    raise DataError(f"{self.name}, row {index}: {self.column!r} must be a dict, got {translation!r}.")
                sides = []
                for lang in (self.src_lang, self.tgt_lang):
                    if lang not in translation:
                        raise DataError(
                            f"{self.name}, row {index}: missing language key {lang!r} in {self.column!r} "
                            f"(keys: {sorted(translation)})."
                        )
                    sides.append((translation[lang] or "").strip())
                rows.append((index, sides[0], sides[1]))
            yield rows, position

    def scan(self) -> CorpusStats:
        if self.streaming:
            rows = _known_num_rows(self.dataset)
            return CorpusStats(lines=rows, used=rows, blank=None, heldout=None)
        return super().scan()

    def fingerprint(self):
        return ["hf-translation", self.pair, self.heldout_every, _dataset_fingerprint(self.dataset)]

    def __repr__(self):
        return f"HFTranslationCorpus({self.name!r}, pair={self.pair!r})"


def load_hf_dataset(
    name: str,
    config: str | None,
    split: str,
    streaming: bool,
    cache_dir: str | None = None,
    config_flag: str = "--dataset_config_name",
):
    """`datasets.load_dataset`, or `load_from_disk` when `name` is a folder written by `save_to_disk`.
    `config_flag` is the option that named `config`, for the error message."""
    path = Path(name)
    if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise DataError(f"{name} has no split {split!r} (splits: {list(dataset)}); pass --dataset_split.")
            dataset = dataset[split]
        return dataset.to_iterable_dataset() if streaming else dataset
    try:
        return datasets.load_dataset(name, config, split=split, streaming=streaming, cache_dir=cache_dir)
    except RuntimeError as e:
        if "scripts are no longer supported" not in str(e):
            raise
        raise DataError(
            f"cannot load the 🤗 dataset {name!r}: it is built by a loading script, which datasets >= 4 no longer "
            "runs. Use a dataset hosted as data files (Parquet, JSON), e.g. HuggingFaceFW/fineweb-2 for text and "
            "Helsinki-NLP/opus-100 for pairs (README.md)."
        ) from e
    except (FileNotFoundError, ValueError) as e:
        raise DataError(
            f"cannot load the 🤗 dataset {name!r} (config {config!r}, split {split!r}): {e}. Check the name, "
            f"{config_flag} and --dataset_split (this machine may have no access to the Hub)."
        ) from e


def _label(name: str, config: str | None, split: str) -> str:
    return f"{name}" + (f" [{config}]" if config else "") + f" ({split})"


def find_hf_mono_corpora(name, configs, split, streaming, text_column=None, cache_dir=None) -> list[HFTextCorpus]:
    """One corpus per config of a 🤗 text dataset, named after the config (its language)."""
    corpora = []
    for config in configs:
        dataset = load_hf_dataset(name, config, split, streaming, cache_dir, "--mono_dataset_config_names")
        language = config or Path(name).name
        corpora.append(HFTextCorpus(dataset, language, text_column, name=_label(name, config, split)))
    return corpora


def find_hf_parallel_corpora(name, configs, split, streaming, heldout_every=0, cache_dir=None):
    """One corpus per config of a 🤗 translation dataset."""
    corpora = []
    for config in configs:
        dataset = load_hf_dataset(name, config, split, streaming, cache_dir, "--parallel_dataset_config_names")
        label = _label(name, config, split)
        corpora.append(HFTranslationCorpus(dataset, heldout_every=heldout_every, name=label))
    return corpora
