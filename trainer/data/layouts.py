"""Token layouts of the three objectives, on plain lists of token ids (special tokens added here, nowhere else).

    MLM   <s> s1 </s> s2 </s> ... sk </s>      consecutive sentences of one language (fairseq/XLM-R blocks)
    TLM   <s> A </s></s> B </s>                 a translation pair (XLM-R pair layout, see build_tlm_example)
    XLCO  query <s> x1 </s> y1 </s>             mixup contrast: two pairs, order and roles drawn at random
          key   <s> x2 </s> y2 </s>
          (without mixup: query <s> c1 </s>, key <s> c2 </s>)

Nothing here ever indexes past a budget: over-long sentences are cut from the end to fit max_seq_length.
"""

import numpy as np


def pack_blocks(lengths: np.ndarray, max_seq_length: int) -> np.ndarray:
    """Greedy packing of consecutive sentences into MLM blocks, from token counts alone.

    lengths: (n,) tokens per sentence (no specials). A block `<s> s_a </s> ... s_{b-1} </s>` takes sentences
    a..b-1 as long as they fit in max_seq_length; a sentence longer than max_seq_length - 2 is truncated and fills
    a block of its own. Empty sentences (0 tokens) are skipped. Returns (n_blocks, 2) int64 [start, stop) ranges;
    `build_block` and `BlockPacker` produce exactly these blocks.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    # Cost of a sentence in a block: its (truncated) tokens + its </s>; the block's <s> is set aside in `room`.
    cost = np.where(lengths > 0, np.minimum(lengths, max_seq_length - 2) + 1, 0)
    ends = np.concatenate([[0], np.cumsum(cost)])
    room = max_seq_length - 1
    blocks = []
    start, n = 0, len(lengths)
    while start < n:
        # Largest stop with ends[stop] - ends[start] <= room; stop > start since every cost <= room.
        stop = int(np.searchsorted(ends, ends[start] + room, side="right")) - 1
        stop = max(stop, start + 1)
        if ends[stop] > ends[start]:  # skip runs of empty sentences
            blocks.append((start, stop))
        start = stop
    return np.array(blocks, dtype=np.int64).reshape(-1, 2)


def build_block(sentences: list[list[int]], bos: int, eos: int, max_seq_length: int) -> list[int]:
    """`<s> s1 </s> s2 </s> ...` from sentences that `pack_blocks` grouped together."""
    budget = max_seq_length - 2
    block = [bos]
    for ids in sentences:
        if ids:
            block.extend(ids[:budget])
            block.append(eos)
    return block


class BlockPacker:
    """Streaming version of pack_blocks + build_block: feed sentences one by one, get full blocks back."""

    def __init__(self, bos: int, eos: int, max_seq_length: int):
        self.bos, self.eos, self.max_seq_length = bos, eos, max_seq_length
        self.block = [bos]

    def add(self, ids: list[int]) -> list[int] | None:
        """Add one sentence; returns the finished block when this sentence does not fit in it any more."""
        if not ids:
            return None
        ids = ids[: self.max_seq_length - 2]
        finished = None
        if len(self.block) + len(ids) + 1 > self.max_seq_length:
            finished, self.block = self.block, [self.bos]
        self.block.extend(ids)
        self.block.append(self.eos)
        return finished

    def flush(self) -> list[int] | None:
        """The last, partly filled block (None if empty); the packer starts over."""
        finished, self.block = self.block, [self.bos]
        return finished if len(finished) > 1 else None


def trim_longer(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths to keep of two sequences so that they fit in `budget` tokens, trimming the longer one first.

    Same result as removing one token at a time from the currently longer sequence (ties: from `a`).
    """
    excess = len_a + len_b - budget
    if excess <= 0:
        return len_a, len_b
    longer_is_a = len_a >= len_b
    cut = min(excess, abs(len_a - len_b))
    len_a, len_b = (len_a - cut, len_b) if longer_is_a else (len_a, len_b - cut)
    excess -= cut
    # Now equal: alternate, starting with a.
    return len_a - (excess + 1) // 2, len_b - excess // 2


def build_tlm_example(src: list[int], tgt: list[int], bos: int, eos: int, max_seq_length: int) -> list[int]:
    """`<s> A </s></s> B </s>`, trimmed to max_seq_length by shortening the longer side.

    We use XLM-R's own pair layout (what `tokenizer(a, b)` produces, and what XNLI fine-tuning feeds the model)
    rather than the InfoXLM reference's `<s> A </s> B </s>`, so that pretraining and fine-tuning see sentence
    pairs in the same format. It costs one token per pair.
    """
    len_a, len_b = trim_longer(len(src), len(tgt), max_seq_length - 4)
    return [bos, *src[:len_a], eos, eos, *tgt[:len_b], eos]


def _single_side(ids: list[int], bos: int, eos: int, max_seq_length: int) -> list[int]:
    return [bos, *ids[: max_seq_length - 2], eos]


def _mixup_side(first: list[int], second: list[int], bos: int, eos: int, max_seq_length: int) -> list[int]:
    # Each sentence is `<s> x </s>`; the second one loses its leading <s>, as in the reference implementation.
    len_a, len_b = trim_longer(len(first), len(second), max_seq_length - 3)
    return [bos, *first[:len_a], eos, *second[:len_b], eos]


def build_xlco_example(
    pair: tuple[list[int], list[int]],
    other_pair: tuple[list[int], list[int]] | None,
    bits: int,
    bos: int,
    eos: int,
    max_seq_length: int,
) -> tuple[list[int], list[int]]:
    """Query and key sides for cross-lingual contrast (XLCO) from pair ⟨c1, c2⟩ and, for mixup, pair ⟨d1, d2⟩.

    bits (0..7) are the reference implementation's three random bits:
      bit 0 (1): swap the two sentences on the query side  (c1 d1 -> d1 c1)
      bit 1 (2): swap the two sentences on the key side    (c2 d2 -> d2 c2)
      bit 2 (4): swap the query and key sides
    With mixup a side reads `<s> x1 </s> y1 </s>`; the query holds one language, the key its translations.
    Without mixup (other_pair None) query = `<s> c1 </s>`, key = `<s> c2 </s>`, and only bit 2 is used.
    """
    c1, c2 = pair
    if other_pair is None:
        query, key = _single_side(c1, bos, eos, max_seq_length), _single_side(c2, bos, eos, max_seq_length)
    else:
        d1, d2 = other_pair
        query_parts = (d1, c1) if bits & 1 else (c1, d1)
        key_parts = (d2, c2) if bits & 2 else (c2, d2)
        query = _mixup_side(*query_parts, bos, eos, max_seq_length)
        key = _mixup_side(*key_parts, bos, eos, max_seq_length)
    if bits & 4:
        query, key = key, query
    return query, key
