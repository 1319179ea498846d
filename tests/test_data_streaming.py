"""Streaming: the collators run over a streamed 🤗 IterableDataset without materialising it; memory stays flat."""

import itertools
import os

import datasets
import psutil
import pytest

from trainer import DataArguments, InfoXLMDataCollator, build_pretraining_dataset
from trainer.data import Corpora
from trainer.data.hf_sources import HFTextCorpus, HFTranslationCorpus

WORDS = "the a cat dog sat on mat house red blue green big small one two three and or is was".split()
NUM_LINES = 1_000_000
WORDS_PER_LINE = 12


def generate_lines(num_lines):
    # Deterministic, cheap, and varied enough that no two consecutive lines are equal.
    for i in range(num_lines):
        yield {"text": " ".join(WORDS[(i * 7 + k * k) % len(WORDS)] for k in range(WORDS_PER_LINE))}


def generate_pairs(num_pairs):
    for i in range(num_pairs):
        yield {"translation": {"en": f"the cat {WORDS[i % 20]}", "fr": f"le chat {WORDS[(i + 1) % 20]}"}}


def rss_mb():
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


@pytest.mark.slow
def test_streaming_a_million_lines_keeps_memory_flat(tiny_tokenizer):
    stream = datasets.IterableDataset.from_generator(generate_lines, gen_kwargs={"num_lines": NUM_LINES})
    corpora = Corpora(mono=[HFTextCorpus(stream, "en")])
    args = DataArguments(streaming=True, max_seq_length=512)
    dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm"], seed=0, corpora=corpora)
    assert summary["mlm"]["languages"]["en"]["sentences"] is None  # unknown: the stream was not read up front
    collator = InfoXLMDataCollator(tiny_tokenizer)

    # Each block holds (512 - 1) // (12 + 1) = 39 lines, so one pass over the stream is this many blocks:
    blocks_per_pass = -(-NUM_LINES // ((512 - 1) // (WORDS_PER_LINE + 1)))
    batch_size = 64
    examples = iter(dataset)
    samples, tokens = [], 0
    for step in range(-(-blocks_per_pass // batch_size)):
        batch = collator(list(itertools.islice(examples, batch_size)))
        tokens += int(batch["mlm"]["attention_mask"].sum())
        if step % 20 == 0:
            samples.append(rss_mb())
    # The whole stream went through the collator ...
    assert tokens >= NUM_LINES * WORDS_PER_LINE
    # ... while memory stayed flat after warm-up. Holding the corpus would take far more: ~1M Python strings of
    # ~60 characters (> 100 MB), or 12M token ids in lists (> 100 MB).
    warm = samples[2]
    growth = max(samples) - warm
    assert growth < 40, f"RSS grew by {growth:.0f} MB while streaming (samples: {samples[::10]})"


def test_streamed_translations_feed_tlm_and_xlco(tiny_tokenizer):
    stream = datasets.IterableDataset.from_generator(generate_pairs, gen_kwargs={"num_pairs": 5000})
    corpora = Corpora(parallel=[HFTranslationCorpus(stream)])
    assert corpora.parallel[0].pair == "en-fr"
    args = DataArguments(streaming=True, max_seq_length=64, parallel_heldout_every=5)
    dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["tlm", "xlco"], seed=0, corpora=corpora)
    collator = InfoXLMDataCollator(tiny_tokenizer, pad_to_multiple_of=8, xlco_mask_probability=0.0)
    batch = collator(list(itertools.islice(iter(dataset), 16)))
    # <s> the cat w </s></s> le chat w </s>: 10 tokens, padded to 16.
    assert batch["tlm"]["input_ids"].shape == (16, 16) and (batch["tlm"]["attention_mask"].sum(1) == 10).all()
    # Mixup sides <s> x1 </s> y1 </s>: 9 tokens; query and key are translations (one English side, one French).
    assert (batch["xlco"]["query_attention_mask"].sum(1) == 9).all()
    english = tiny_tokenizer.convert_tokens_to_ids("the")
    query_english = batch["xlco"]["query_input_ids"][:, 1] == english
    key_english = batch["xlco"]["key_input_ids"][:, 1] == english
    assert (query_english != key_english).all()
