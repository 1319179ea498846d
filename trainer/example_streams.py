"""Endless, seeded streams of pretraining examples: per language, then per objective with language sampling.

A *segment* is one corpus seen as examples of one objective's raw material:
    ArrowBlockSegment / StreamBlockSegment   -> MLM blocks (list[int], specials included)
    ArrowPairSegment  / StreamPairSegment    -> translation pairs (src ids, tgt ids), no specials
Arrow segments read the tokenized cache (map-style) and are fully reshuffled every pass; stream segments tokenize
on the fly and shuffle within a buffer. A *LanguageSource* chains the segments of one language (or language pair)
and restarts forever, one seeded pass ("epoch") after another. An *ObjectiveStream* samples a language per
example (p_i ∝ n_i^α) and lays out the example (layouts.py).

Determinism: every random choice comes from make_rng(seed, ...) keyed by objective, language, segment and epoch
(and DataLoader worker for the language draws), so iterating again with the same seed gives the same examples.
Workers: an arrow segment's permutation is shared by all workers and split round robin; a stream is split in
chunks of lines (corpora.owns_line). A worker whose share is empty reads the whole segment instead.
"""

import itertools
from collections.abc import Iterator

import numpy as np

from .data_errors import DataError
from .layouts import BlockPacker, build_block, build_tlm_example, build_xlco_example, pack_blocks
from .sampling import make_rng, sample_indices
from .tokenized_corpora import encode


def _shard(order: np.ndarray, worker_id: int, num_workers: int) -> np.ndarray:
    return order if num_workers <= 1 else order[worker_id::num_workers]


def _shuffled(items: Iterator, buffer_size: int, rng: np.random.Generator) -> Iterator:
    """Items in a random order drawn within a sliding buffer (buffer_size 0: unchanged order)."""
    if buffer_size <= 1:
        yield from items
        return
    buffer = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        j = int(rng.integers(buffer_size))
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer


class _ArrowSegment:
    """Shared plumbing: holds the datasets.Dataset (picklable by file path) and opens its Arrow table lazily."""

    def __init__(self, dataset, start: int, stop: int):
        if dataset._indices is not None:  # rows are read from the Arrow table directly: no indices mapping
            dataset = dataset.flatten_indices()
        self.dataset, self.start, self.stop = dataset, start, stop
        self._table = None

    @property
    def table(self):
        if self._table is None:
            self._table = self.dataset.data.table
        return self._table

    def _column(self, name: str) -> np.ndarray:
        return self.table.column(name).slice(self.start, self.stop - self.start).to_numpy()

    def __getstate__(self):
        # Never pickle Arrow buffers into DataLoader workers: they re-open the memory-mapped file.
        state = dict(self.__dict__)
        state["_table"] = None
        return state


class ArrowBlockSegment(_ArrowSegment):
    """MLM blocks over rows [start, stop) of the tokenized monolingual cache."""

    def __init__(self, dataset, start, stop, max_seq_length: int, bos: int, eos: int):
        super().__init__(dataset, start, stop)
        self.max_seq_length, self.bos, self.eos = max_seq_length, bos, eos
        lengths = self._column("length")
        self.blocks = pack_blocks(lengths, max_seq_length) + start
        self.stats = {
            "sentences": int((lengths > 0).sum()),
            "tokens": int(np.minimum(lengths, max_seq_length - 2).sum()),
            "examples": len(self.blocks),
            "truncated": int((lengths > max_seq_length - 2).sum()),
            "empty_after_tokenization": int((lengths == 0).sum()),
        }

    def iter_pass(self, rng: np.random.Generator, worker_id: int, num_workers: int) -> Iterator[list[int]]:
        ids = self.table.column("input_ids")
        for block in _shard(rng.permutation(len(self.blocks)), worker_id, num_workers):
            start, stop = self.blocks[block]
            yield build_block(ids.slice(start, stop - start).to_pylist(), self.bos, self.eos, self.max_seq_length)


class ArrowPairSegment(_ArrowSegment):
    """Translation pairs in rows [start, stop) of the tokenized parallel cache (pairs with an empty side skipped)."""

    fetch = 256  # rows gathered per Arrow `take`

    def __init__(self, dataset, start, stop, max_seq_length: int):
        super().__init__(dataset, start, stop)
        src, tgt = self._column("src_length"), self._column("tgt_length")
        kept = (src > 0) & (tgt > 0)
        self.rows = np.flatnonzero(kept) + start
        self.stats = {
            "pairs": int(kept.sum()),
            "tokens": int((src + tgt)[kept].sum()),
            "examples": len(self.rows),
            # Pairs that do not fit <s> A </s></s> B </s>: the longer side is trimmed.
            "truncated": int(((src + tgt)[kept] > max_seq_length - 4).sum()),
            "empty_after_tokenization": int((~kept).sum()),
        }

    def iter_pass(self, rng, worker_id, num_workers) -> Iterator[tuple[list[int], list[int]]]:
        pairs = self.table.select(["src_ids", "tgt_ids"])
        rows = _shard(self.rows[rng.permutation(len(self.rows))], worker_id, num_workers)
        for i in range(0, len(rows), self.fetch):
            chunk = pairs.take(rows[i : i + self.fetch])
            yield from zip(chunk.column("src_ids").to_pylist(), chunk.column("tgt_ids").to_pylist())


class StreamBlockSegment:
    """MLM blocks packed on the fly from a monolingual corpus, tokenized in batches as it is read."""

    def __init__(self, corpus, tokenizer, max_seq_length: int, bos: int, eos: int, shuffle_buffer_size: int = 0):
        self.corpus, self.tokenizer = corpus, tokenizer
        self.max_seq_length, self.bos, self.eos = max_seq_length, bos, eos
        self.shuffle_buffer_size = shuffle_buffer_size

    def _blocks(self, worker_id, num_workers) -> Iterator[list[int]]:
        packer = BlockPacker(self.bos, self.eos, self.max_seq_length)
        for texts in self.corpus.iter_batches(worker_id=worker_id, num_workers=num_workers):
            for ids in encode(self.tokenizer, texts):
                block = packer.add(ids)
                if block is not None:
                    yield block
        block = packer.flush()
        if block is not None:
            yield block

    def iter_pass(self, rng, worker_id, num_workers) -> Iterator[list[int]]:
        yield from _shuffled(self._blocks(worker_id, num_workers), self.shuffle_buffer_size, rng)


class StreamPairSegment:
    """Translation pairs from a parallel corpus, tokenized in batches as it is read."""

    def __init__(self, corpus, tokenizer, shuffle_buffer_size: int = 0):
        self.corpus, self.tokenizer = corpus, tokenizer
        self.shuffle_buffer_size = shuffle_buffer_size

    def _pairs(self, worker_id, num_workers):
        for batch in self.corpus.iter_batches(worker_id=worker_id, num_workers=num_workers):
            src = encode(self.tokenizer, [s for s, _ in batch])
            tgt = encode(self.tokenizer, [t for _, t in batch])
            yield from ((a, b) for a, b in zip(src, tgt) if a and b)

    def iter_pass(self, rng, worker_id, num_workers):
        yield from _shuffled(self._pairs(worker_id, num_workers), self.shuffle_buffer_size, rng)


class LanguageSource:
    """The segments of one language (or language pair), read pass after pass forever."""

    def __init__(self, name: str, segments: list):
        self.name, self.segments = name, segments

    def iter_forever(self, seed: int, objective: str, worker_id: int = 0, num_workers: int = 1) -> Iterator:
        for epoch in itertools.count():
            produced = False
            for k, segment in enumerate(self.segments):
                # Not keyed by worker: all workers must agree on an arrow segment's permutation to split it.
                rng = make_rng(seed, objective, self.name, k, epoch)
                for example in segment.iter_pass(rng, worker_id, num_workers):
                    produced = True
                    yield example
            if not produced:
                if num_workers > 1:  # this worker's share is empty (tiny corpus): read it all instead
                    worker_id, num_workers = 0, 1
                    continue
                raise DataError(
                    f"{objective} data for {self.name!r} produced no example in a whole pass; "
                    "check that its corpora are not empty (or, for streamed data, not exhausted)."
                )


class ObjectiveStream:
    """Examples of one objective: draw a language with `probabilities`, take its next example, lay it out."""

    def __init__(
        self,
        objective: str,
        sources: list[LanguageSource],
        probabilities: list[float],
        bos: int,
        eos: int,
        max_seq_length: int,
        xlco_mixup: bool = True,
        tlm_both_directions: bool = True,
    ):
        if objective not in ("mlm", "tlm", "xlco"):
            raise ValueError(f"unknown objective {objective!r}")
        self.objective, self.sources, self.probabilities = objective, sources, probabilities
        self.bos, self.eos, self.max_seq_length = bos, eos, max_seq_length
        self.xlco_mixup, self.tlm_both_directions = xlco_mixup, tlm_both_directions

    def iter_examples(self, seed: int, worker_id: int = 0, num_workers: int = 1) -> Iterator[dict]:
        rng = make_rng(seed, self.objective, "languages", worker_id)
        bits_rng = make_rng(seed, self.objective, "mixup", worker_id)
        # TLM reads each pair in both directions (the reference binarises (src, tgt) and (tgt, src)): a coin per example.
        direction_rng = make_rng(seed, self.objective, "direction", worker_id)
        streams: dict[int, Iterator] = {}
        for index in sample_indices(self.probabilities, rng):
            if index not in streams:  # opened lazily: a language never drawn is never read
                streams[index] = self.sources[index].iter_forever(seed, self.objective, worker_id, num_workers)
            stream = streams[index]
            if self.objective == "mlm":
                yield {"input_ids": next(stream)}
            elif self.objective == "tlm":
                src, tgt = next(stream)
                if self.tlm_both_directions and direction_rng.random() < 0.5:
                    src, tgt = tgt, src
                yield {"input_ids": build_tlm_example(src, tgt, self.bos, self.eos, self.max_seq_length)}
            else:
                pair = next(stream)
                other = next(stream) if self.xlco_mixup else None
                bits = int(bits_rng.integers(8))
                query, key = build_xlco_example(pair, other, bits, self.bos, self.eos, self.max_seq_length)
                yield {"query_input_ids": query, "key_input_ids": key}
