"""Endless, seeded streams of pretraining examples that can stop and resume anywhere: per language, then per
objective with language sampling.

A *segment* is one corpus seen as examples of one objective's raw material:
    ArrowBlockSegment / StreamBlockSegment   -> MLM blocks (list[int], specials included)
    ArrowPairSegment  / StreamPairSegment    -> translation pairs (src ids, tgt ids), no specials
Arrow segments read the tokenized cache (map-style) and are fully reshuffled every pass; stream segments tokenize
on the fly and shuffle within windows of whole reader chunks. A *LanguageSource* chains the segments of one
language (or language pair) and restarts forever, one seeded pass ("epoch") after another. An *ObjectiveIterator*
samples a language per example (p_i ∝ n_i^α) and lays out the example (layouts.py).

Positions: every example comes with the position *after* it, a small JSON-able dict (epoch, segment, offset in the
pass; for a stream, the reader position at the start of its shuffle window and the offset in the window). Giving a
position back as `start` continues with the next example, so resuming costs at most one shuffle window of reading,
whatever the step. This is the part no library does for us: 🤗 `IterableDataset.state_dict()` drops its shuffle
buffer on resume, and `interleave_datasets` cannot give exact α-sampling per example with a restorable RNG.

Determinism: every random choice comes from make_rng(seed, ...) keyed by objective, language, segment, epoch and
window (and shard for the language draws, mixup and TLM direction), so the same seed gives the same examples,
resumed or not.
Shards: each (rank, DataLoader worker) pair is one shard (`worker_id` / `num_workers` below count shards). An arrow
segment's permutation is shared by all shards and split round robin; a stream is split in chunks of lines
(sources.owns_line), and a shard decodes and tokenizes only its own chunks. A shard whose share of a language is
empty (a corpus with fewer chunks than shards) reads the share of shard `s mod S/2` instead, halving until one is
not empty: tiny corpora are then read by several shards, never skipped.
"""

import bisect
import zlib
from collections.abc import Mapping

import numpy as np

from .layouts import BlockPacker, build_block, build_tlm_example, build_xlco_example, pack_blocks
from .sources import DataError
from .tokenized_cache import encode

# --------------------------------------------------------------------------------------------------------------------
# Language sampling and the seeded random streams


def sampling_probabilities(sizes: Mapping[str, float], alpha: float) -> dict[str, float]:
    """Multinomial language probabilities p_i = n_i^α / Σ_j n_j^α (Lample & Conneau 2019; XLM-R uses α = 0.3).

    α = 1 samples in proportion to corpus size, α = 0 uniformly; in between, low-resource languages are
    up-sampled relative to their size. `sizes` maps a language (or language pair) to its number of
    sentences (or pairs); all must be positive.
    """
    if not sizes:
        return {}
    bad = {name: n for name, n in sizes.items() if not n or n <= 0}
    if bad:
        raise ValueError(f"language sizes must be positive, got {bad}")
    names = list(sizes)
    # Work with shares n_i / N so that n_i^α cannot overflow for huge corpora.
    shares = np.array([sizes[name] for name in names], dtype=np.float64)
    shares /= shares.sum()
    weights = shares**alpha
    weights /= weights.sum()
    return dict(zip(names, weights.tolist()))


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and run (unlike hash(), which is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def make_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent random stream for (seed, *keys); strings are hashed stably."""
    entropy = [int(seed) & 0xFFFFFFFF] + [stable_hash(k) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(entropy)


# --------------------------------------------------------------------------------------------------------------------
# Segments


def _shard(order: np.ndarray, worker_id: int, num_workers: int) -> np.ndarray:
    return order if num_workers <= 1 else order[worker_id::num_workers]


def _offset(start: dict | None) -> int:
    return 0 if start is None else int(start["offset"])


class ListColumn:
    """The rows of an Arrow list column (token ids) as Python lists, read through numpy views of its buffers (a
    memory-mapped table is not copied), one row at a time as a shard's shuffled pass needs them. pyarrow offers
    batched `take` + `to_pylist`, which costs about as much per row and adds a `select` and a `take` to every pass:
    a shard of a small corpus starts a pass S times as often per example at S shards (docs/performance.md).
    """

    def __init__(self, column):
        chunks = column.chunks
        self.starts = np.cumsum([0] + [len(chunk) for chunk in chunks]).tolist()  # first row of each chunk
        self.offsets = [chunk.offsets.to_numpy() for chunk in chunks]
        self.values = [chunk.values.to_numpy(zero_copy_only=False) for chunk in chunks]

    def _pieces(self, first: int, stop: int):
        """(values, offsets) of rows [first, stop), one piece per chunk they cover."""
        k = bisect.bisect_right(self.starts, first) - 1
        while first < stop:
            end, base = min(stop, self.starts[k + 1]), self.starts[k]
            yield self.values[k], self.offsets[k][first - base : end - base + 1]
            first, k = end, k + 1

    def row(self, index: int) -> list[int]:
        k = bisect.bisect_right(self.starts, index) - 1
        a, b = self.offsets[k][index - self.starts[k] : index - self.starts[k] + 2].tolist()
        return self.values[k][a:b].tolist()

    def rows(self, first: int, stop: int) -> list[list[int]]:
        """Rows [first, stop): one numpy read per chunk, split in Python."""
        rows = []
        for values, offsets in self._pieces(first, stop):
            flat = values[offsets[0] : offsets[-1]].tolist()
            bounds = (offsets - offsets[0]).tolist()
            rows += [flat[a:b] for a, b in zip(bounds, bounds[1:])]
        return rows


class _ArrowSegment:
    """Shared plumbing: holds the datasets.Dataset (picklable by file path) and opens its Arrow table lazily."""

    def __init__(self, dataset, start: int, stop: int):
        if dataset._indices is not None:  # rows are read from the Arrow table directly: no indices mapping
            dataset = dataset.flatten_indices()
        self.dataset, self.start, self.stop = dataset, start, stop
        self._columns: dict[str, ListColumn] = {}

    def list_column(self, name: str) -> ListColumn:
        if name not in self._columns:
            self._columns[name] = ListColumn(self.dataset.data.table.column(name))
        return self._columns[name]

    def _column(self, name: str) -> np.ndarray:
        return self.dataset.data.table.column(name).slice(self.start, self.stop - self.start).to_numpy()

    def __getstate__(self):
        # Never pickle Arrow buffers into DataLoader workers: they re-open the memory-mapped file.
        state = dict(self.__dict__)
        state["_columns"] = {}
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

    def iter_pass(self, keys: tuple, worker_id: int, num_workers: int, start: dict | None = None):
        """(block, position) for this worker's share of one pass, shuffled by make_rng(*keys), from `start` on."""
        ids = self.list_column("input_ids")
        order = _shard(make_rng(*keys).permutation(len(self.blocks)), worker_id, num_workers)
        for i in range(_offset(start), len(order)):
            first, stop = self.blocks[order[i]]
            yield build_block(ids.rows(first, stop), self.bos, self.eos, self.max_seq_length), {"offset": i + 1}


class ArrowPairSegment(_ArrowSegment):
    """Translation pairs in rows [start, stop) of the tokenized parallel cache (pairs with an empty side skipped)."""

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

    def iter_pass(self, keys: tuple, worker_id: int, num_workers: int, start: dict | None = None):
        """((src ids, tgt ids), position) for this worker's share of one pass (see ArrowBlockSegment.iter_pass)."""
        src, tgt = self.list_column("src_ids"), self.list_column("tgt_ids")
        rows = _shard(self.rows[make_rng(*keys).permutation(len(self.rows))], worker_id, num_workers).tolist()
        for i in range(_offset(start), len(rows)):
            yield (src.row(rows[i]), tgt.row(rows[i])), {"offset": i + 1}


class _StreamSegment:
    """A corpus tokenized as it is read. Examples are shuffled within windows of whole reader chunks (at least
    `shuffle_buffer_size` examples; 0 keeps the reading order): unlike a sliding buffer, a window can be rebuilt
    from its reader position alone, so a resume re-reads one window instead of the whole stream so far."""

    def __init__(self, corpus, tokenizer, shuffle_buffer_size: int = 0):
        self.corpus, self.tokenizer = corpus, tokenizer
        self.shuffle_buffer_size = shuffle_buffer_size

    def _examples(self, rows: list, carry):
        """(examples of one reader chunk, carry): `carry` is state that crosses chunks (a partly filled block)."""
        raise NotImplementedError

    def _flush(self, carry) -> list:
        return []

    initial_carry = None

    def iter_pass(self, keys: tuple, worker_id: int, num_workers: int, start: dict | None = None):
        """(example, position) for this worker's share of one pass, from `start` on (a position it yielded)."""
        if start is None:
            start = {"window": 0, "reader": None, "carry": self.initial_carry, "offset": 0}
        window, reader, carry, skip = start["window"], start["reader"], start["carry"], start["offset"]
        chunks = self.corpus.iter_chunks(worker_id, num_workers, reader)
        ended = False
        while not ended:
            window_start = {"window": window, "reader": reader, "carry": carry}
            examples, ended = [], True
            for rows, after in chunks:
                reader = after  # where the next window starts reading
                new, carry = self._examples(rows, carry)
                examples += new
                if len(examples) >= max(self.shuffle_buffer_size, 1):
                    ended = False
                    break
            if ended:
                examples += self._flush(carry)
            order = range(len(examples))
            if self.shuffle_buffer_size > 1:
                order = make_rng(*keys, window).permutation(len(examples)).tolist()
            for i in range(skip, len(examples)):
                yield examples[order[i]], {**window_start, "offset": i + 1}
            skip, window = 0, window + 1


class StreamBlockSegment(_StreamSegment):
    """MLM blocks packed on the fly from a monolingual corpus, tokenized in batches as it is read."""

    def __init__(self, corpus, tokenizer, max_seq_length: int, bos: int, eos: int, shuffle_buffer_size: int = 0):
        super().__init__(corpus, tokenizer, shuffle_buffer_size)
        self.max_seq_length, self.bos, self.eos = max_seq_length, bos, eos
        self.initial_carry = [bos]

    def _examples(self, texts, carry):
        packer = BlockPacker(self.bos, self.eos, self.max_seq_length)
        packer.block = list(carry)  # the block left open by the previous chunk
        blocks = [block for ids in encode(self.tokenizer, texts) if (block := packer.add(ids)) is not None]
        return blocks, packer.block

    def _flush(self, carry):
        return [carry] if len(carry) > 1 else []


class StreamPairSegment(_StreamSegment):
    """Translation pairs from a parallel corpus, tokenized in batches as it is read."""

    def _examples(self, pairs, carry):
        if not pairs:
            return [], carry
        src = encode(self.tokenizer, [s for s, _ in pairs])
        tgt = encode(self.tokenizer, [t for _, t in pairs])
        return [(a, b) for a, b in zip(src, tgt) if a and b], carry


class LanguageSource:
    """The segments of one language (or language pair), read pass after pass forever."""

    def __init__(self, name: str, segments: list):
        self.name, self.segments = name, segments

    def iter_forever(self, seed: int, objective: str, worker_id: int = 0, num_workers: int = 1, start=None):
        """(example, position) forever, from `start` on (a position it yielded)."""
        if start is None:
            start = {"epoch": 0, "segment": 0, "position": None, "shard": [worker_id, num_workers]}
        epoch, first_segment, position, shard = start["epoch"], start["segment"], start["position"], start["shard"]
        while True:
            produced = position is not None  # resumed inside a pass that has produced
            for k in range(first_segment, len(self.segments)):
                # Not keyed by worker: all workers must agree on an arrow segment's permutation to split it.
                keys = (seed, objective, self.name, k, epoch)
                for example, after in self.segments[k].iter_pass(keys, *shard, position):
                    produced = True
                    yield example, {"epoch": epoch, "segment": k, "position": after, "shard": shard}
                position = None
            if not produced:
                if shard[1] > 1:  # this shard's share is empty (tiny corpus): share another shard's, then fewer's
                    shard = [shard[0] % (shard[1] // 2), shard[1] // 2]
                else:
                    raise DataError(
                        f"{objective} data for {self.name!r} produced no example in a whole pass; "
                        "check that its corpora are not empty (or, for streamed data, not exhausted)."
                    )
            epoch, first_segment = epoch + 1, 0


class LanguageDraws:
    """Language indices drawn i.i.d. from `probabilities`, in chunks (one numpy call each), restorable: the state is
    the generator's state before the current chunk and the index in it."""

    def __init__(self, probabilities, rng: np.random.Generator, state: dict | None = None, chunk: int = 4096):
        self.probabilities, self.rng, self.chunk = np.asarray(probabilities, dtype=np.float64), rng, chunk
        if state is not None:
            rng.bit_generator.state = state["rng"]
        self._draw_chunk()
        self.index = 0 if state is None else state["index"]

    def _draw_chunk(self) -> None:
        self.chunk_state = self.rng.bit_generator.state
        self.values = self.rng.choice(len(self.probabilities), size=self.chunk, p=self.probabilities).tolist()
        self.index = 0

    def __next__(self) -> int:
        if self.index == len(self.values):
            self._draw_chunk()
        self.index += 1
        return self.values[self.index - 1]

    def state_dict(self) -> dict:
        return {"rng": self.chunk_state, "index": self.index}


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

    def iter_examples(self, seed: int, worker_id: int = 0, num_workers: int = 1, state: dict | None = None):
        return ObjectiveIterator(self, seed, worker_id, num_workers, state)


class ObjectiveIterator:
    """The examples of one ObjectiveStream for one DataLoader worker; `state_dict()` is its position after the last
    example, `ObjectiveStream.iter_examples(..., state=...)` continues from it."""

    def __init__(self, stream: ObjectiveStream, seed: int, worker_id: int, num_workers: int, state: dict | None):
        self.stream, self.seed, self.worker_id, self.num_workers = stream, seed, worker_id, num_workers
        objective = stream.objective
        self.draws = LanguageDraws(
            stream.probabilities, make_rng(seed, objective, "languages", worker_id), state and state["draws"]
        )
        self.mixup_rng = make_rng(seed, objective, "mixup", worker_id)
        # TLM reads each pair in both directions (the reference binarises (src, tgt) and (tgt, src)): a coin each.
        self.direction_rng = make_rng(seed, objective, "direction", worker_id)
        self.positions: dict[str, dict] = {}  # language -> position after its last example
        if state is not None:
            self.mixup_rng.bit_generator.state = state["mixup"]
            self.direction_rng.bit_generator.state = state["direction"]
            self.positions = dict(state["languages"])
        self.readers: dict[int, object] = {}

    def _next_of(self, index: int):
        source = self.stream.sources[index]
        if index not in self.readers:  # opened lazily: a language never drawn is never read
            start = self.positions.get(source.name)
            self.readers[index] = source.iter_forever(
                self.seed, self.stream.objective, self.worker_id, self.num_workers, start
            )
        example, self.positions[source.name] = next(self.readers[index])
        return example

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        stream, index = self.stream, next(self.draws)
        if stream.objective == "mlm":
            return {"input_ids": self._next_of(index)}
        if stream.objective == "tlm":
            src, tgt = self._next_of(index)
            if stream.tlm_both_directions and self.direction_rng.random() < 0.5:
                src, tgt = tgt, src
            return {"input_ids": build_tlm_example(src, tgt, stream.bos, stream.eos, stream.max_seq_length)}
        pair = self._next_of(index)
        other = self._next_of(index) if stream.xlco_mixup else None
        bits = int(self.mixup_rng.integers(8))
        query, key = build_xlco_example(pair, other, bits, stream.bos, stream.eos, stream.max_seq_length)
        return {"query_input_ids": query, "key_input_ids": key}

    def state_dict(self) -> dict:
        return {
            "draws": self.draws.state_dict(),
            "mixup": self.mixup_rng.bit_generator.state,
            "direction": self.direction_rng.bit_generator.state,
            "languages": dict(self.positions),
        }
