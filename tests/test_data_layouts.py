"""Token layouts of MLM blocks, TLM pairs and XLCO query/key sides, token by token."""

import numpy as np
import pytest

from trainer.data.layouts import (
    BlockPacker,
    build_block,
    build_tlm_example,
    build_xlco_example,
    pack_blocks,
    trim_longer,
)

BOS, EOS = 0, 2


def packed_blocks(sentences, max_seq_length):
    """Blocks from pack_blocks + build_block (the map-style path)."""
    ranges = pack_blocks(np.array([len(s) for s in sentences]), max_seq_length)
    return [build_block(sentences[a:b], BOS, EOS, max_seq_length) for a, b in ranges]


def streamed_blocks(sentences, max_seq_length):
    """Blocks from BlockPacker (the streaming path)."""
    packer, blocks = BlockPacker(BOS, EOS, max_seq_length), []
    for ids in sentences:
        block = packer.add(ids)
        if block is not None:
            blocks.append(block)
    last = packer.flush()
    return blocks + ([last] if last else [])


def test_mlm_block_layout_is_fairseq_style():
    sentences = [[10, 11, 12], [20, 21], [30, 31, 32, 33], [40]]
    # max 10: <s> 10 11 12 </s> 20 21 </s> = 8 tokens; adding [30..33] would need 5 more.
    assert packed_blocks(sentences, 10) == [[0, 10, 11, 12, 2, 20, 21, 2], [0, 30, 31, 32, 33, 2, 40, 2]]


def test_long_sentence_is_truncated_into_its_own_block():
    sentences = [[5], list(range(100, 130)), [6]]
    blocks = packed_blocks(sentences, 8)
    assert blocks == [[0, 5, 2], [0, 100, 101, 102, 103, 104, 105, 2], [0, 6, 2]]
    assert all(len(b) <= 8 for b in blocks)


def test_empty_sentences_are_skipped():
    assert packed_blocks([[], [7], [], [], [8]], 16) == [[0, 7, 2, 8, 2]]
    assert packed_blocks([[], []], 16) == []


@pytest.mark.parametrize("max_seq_length", [8, 9, 16, 64])
def test_streaming_and_cached_packing_agree(max_seq_length):
    rng = np.random.default_rng(0)
    sentences = [list(rng.integers(5, 50, size=rng.integers(0, 30))) for _ in range(300)]
    packed = packed_blocks(sentences, max_seq_length)
    assert packed == streamed_blocks(sentences, max_seq_length)
    assert all(len(b) <= max_seq_length and b[0] == BOS and b[-1] == EOS for b in packed)
    # Every (truncated) non-empty sentence appears exactly once, in order.
    content = [t for b in packed for t in b if t not in (BOS, EOS)]
    assert content == [t for s in sentences for t in s[: max_seq_length - 2]]


def test_trim_longer_matches_one_token_at_a_time():
    for len_a in range(0, 20):
        for len_b in range(0, 20):
            for budget in range(0, 25):
                a, b = len_a, len_b
                while a + b > budget:
                    if a >= b:
                        a -= 1
                    else:
                        b -= 1
                assert trim_longer(len_a, len_b, budget) == (a, b)


def test_tlm_layout():
    assert build_tlm_example([10, 11], [20, 21, 22], BOS, EOS, 16) == [0, 10, 11, 2, 2, 20, 21, 22, 2]


def test_tlm_trims_the_longer_side():
    src, tgt = list(range(100, 120)), [20, 21]
    example = build_tlm_example(src, tgt, BOS, EOS, 12)
    assert example == [0, 100, 101, 102, 103, 104, 105, 2, 2, 20, 21, 2]
    assert len(build_tlm_example(list(range(1000)), list(range(900)), BOS, EOS, 512)) == 512


def test_xlco_without_mixup():
    c = ([10, 11], [20, 21, 22])
    assert build_xlco_example(c, None, 0, BOS, EOS, 16) == ([0, 10, 11, 2], [0, 20, 21, 22, 2])
    assert build_xlco_example(c, None, 4, BOS, EOS, 16) == ([0, 20, 21, 22, 2], [0, 10, 11, 2])


def test_xlco_mixup_layouts_for_all_eight_bit_patterns():
    c1, c2, d1, d2 = [11], [12], [21, 21], [22, 22]
    expected = {
        # bits: (query, key); a side is <s> x </s> y </s> (the second sentence lost its <s>)
        0: ([0, 11, 2, 21, 21, 2], [0, 12, 2, 22, 22, 2]),  # c1 d1 | c2 d2
        1: ([0, 21, 21, 2, 11, 2], [0, 12, 2, 22, 22, 2]),  # d1 c1 | c2 d2
        2: ([0, 11, 2, 21, 21, 2], [0, 22, 22, 2, 12, 2]),  # c1 d1 | d2 c2
        3: ([0, 21, 21, 2, 11, 2], [0, 22, 22, 2, 12, 2]),  # d1 c1 | d2 c2
    }
    for bits in range(8):
        query, key = expected[bits & 3]
        if bits & 4:  # roles swapped
            query, key = key, query
        assert build_xlco_example((c1, c2), (d1, d2), bits, BOS, EOS, 32) == (query, key)


def test_xlco_sides_fit_the_budget():
    long = list(range(100, 400))
    query, key = build_xlco_example((long, [5]), (long, long), 0, BOS, EOS, 64)
    assert len(query) == 64 and len(key) == 64
    assert query[0] == BOS and query.count(EOS) == 2 and key.count(EOS) == 2
    query, key = build_xlco_example((long, long), None, 0, BOS, EOS, 64)
    assert len(query) == len(key) == 64
