"""build_pretraining_dataset end to end: language sampling, determinism, resuming, workers, arguments."""

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from transformers import HfArgumentParser

from trainer import DataArguments, InfoXLMDataCollator, build_pretraining_dataset
from trainer.data import SeededCollator
from trainer.data.streams import ArrowBlockSegment, StreamBlockSegment, sampling_probabilities

WORDS = {"en": "the cat dog sat on mat", "fr": "le chat chien sur tapis", "de": "der die das katze hund"}


@pytest.fixture
def corpus_dir(tmp_path):
    """en: 400 sentences, fr: 100, de: 25 (4 words each), and fr-en / de-en parallel files."""
    rng = np.random.default_rng(0)
    sizes = {"en": 400, "fr": 100, "de": 25}
    for language, size in sizes.items():
        words = WORDS[language].split()
        lines = [" ".join(rng.choice(words, 4)) for _ in range(size)]
        (tmp_path / "mono").mkdir(exist_ok=True)
        (tmp_path / "mono" / f"{language}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "para").mkdir()
    for language, size in (("fr", 60), ("de", 15)):
        (tmp_path / "para" / f"t.{language}-en.{language}").write_text(
            "".join(f"{WORDS[language].split()[i % 5]} {i}\n" for i in range(size)), encoding="utf-8"
        )
        (tmp_path / "para" / f"t.{language}-en.en").write_text(
            "".join(f"{WORDS['en'].split()[i % 5]} {i}\n" for i in range(size)), encoding="utf-8"
        )
    return tmp_path


def make_args(corpus_dir, **overrides):
    values = {
        "mono_data": [str(corpus_dir / "mono")],
        "parallel_data": [str(corpus_dir / "para" / "*")],
        "max_seq_length": 16,
        "data_cache_dir": str(corpus_dir / "cache"),
    }
    return DataArguments(**{**values, **overrides})


def take(dataset, n):
    return list(itertools.islice(iter(dataset), n))


def test_sampling_probabilities():
    probabilities = sampling_probabilities({"en": 1000, "fr": 100, "sw": 10}, alpha=0.3)
    weights = np.array([1000, 100, 10]) ** 0.3
    assert np.allclose(list(probabilities.values()), weights / weights.sum())
    assert np.allclose(list(sampling_probabilities({"a": 3, "b": 1}, alpha=1.0).values()), [0.75, 0.25])
    assert np.allclose(list(sampling_probabilities({"a": 3, "b": 1}, alpha=0.0).values()), [0.5, 0.5])
    # Up-sampling: the smallest language gets more than its share, the largest less.
    assert probabilities["sw"] > 10 / 1110 and probabilities["en"] < 1000 / 1110


def test_languages_are_drawn_with_the_alpha_probabilities(corpus_dir, tiny_tokenizer):
    args = make_args(corpus_dir, language_sampling_alpha=0.5)
    dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm"], seed=0)
    expected = {lang: entry["probability"] for lang, entry in summary["mlm"]["languages"].items()}
    sizes = {"en": 400, "fr": 100, "de": 25}
    assert expected == pytest.approx(sampling_probabilities(sizes, 0.5))
    # Identify each block's language by its first word.
    first_words = {tiny_tokenizer.convert_tokens_to_ids(w): lang for lang, text in WORDS.items() for w in text.split()}
    n = 6000
    counts = Counter(first_words[example["mlm"]["input_ids"][1]] for example in take(dataset, n))
    for language, p in expected.items():
        assert abs(counts[language] / n - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_summary_is_logged(corpus_dir, tiny_tokenizer, caplog):
    caplog.set_level("INFO", logger="trainer.data.assembly")
    _, summary = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm", "tlm"], seed=0)
    assert "p(sample)" in caplog.text and "fr-en" in caplog.text and "blank lines" in caplog.text
    assert summary["mlm"]["tokens"] == 4 * (400 + 100 + 25)  # 4 words per sentence
    assert summary["tlm"]["examples"] == 60 + 15


def test_examples_are_model_ready(corpus_dir, tiny_tokenizer):
    dataset, summary = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm", "tlm", "xlco"], 0)
    bos, eos = tiny_tokenizer.bos_token_id, tiny_tokenizer.eos_token_id
    for example in take(dataset, 200):
        block = example["mlm"]["input_ids"]
        assert len(block) <= 16 and block[0] == bos and block[-1] == eos and bos not in block[1:]
        pair = example["tlm"]["input_ids"]
        assert pair[0] == bos and pair[-1] == eos and pair.count(eos) == 3
        first_eos = pair.index(eos)
        assert pair[first_eos + 1] == eos  # <s> A </s></s> B </s>
        for side in ("query_input_ids", "key_input_ids"):
            ids = example["xlco"][side]
            assert ids[0] == bos and ids.count(bos) == 1 and ids.count(eos) == 2 and ids[-1] == eos
    assert set(summary["tlm"]["languages"]) == {"fr-en", "de-en"}
    batch = InfoXLMDataCollator(tiny_tokenizer)(take(dataset, 8))
    assert batch["mlm"]["input_ids"].shape[0] == batch["tlm"]["labels"].shape[0] == 8


def test_all_xlco_mixup_orders_occur(tmp_path, tiny_tokenizer):
    # Two pairs only, so every mixup example holds both: P = (cat, le), Q = (dog, chat).
    (tmp_path / "t.fr-en.en").write_text("cat\ndog\n")
    (tmp_path / "t.fr-en.fr").write_text("le\nchat\n")
    args = DataArguments(parallel_data=[str(tmp_path / "t.fr-en.en")], data_cache_dir=str(tmp_path / "c"))
    dataset, _ = build_pretraining_dataset(args, tiny_tokenizer, ["xlco"], seed=0)
    english = set(tiny_tokenizer.convert_tokens_to_ids(["cat", "dog"]))
    seen = Counter()
    for example in take(dataset, 400):
        query, key = example["xlco"]["query_input_ids"], example["xlco"]["key_input_ids"]
        query_is_english = query[1] in english
        assert (key[1] in english) != query_is_english  # one side per language
        seen[(query_is_english, tuple(query[1:-1]), tuple(key[1:-1]))] += 1
    # 2 role assignments x 2 query orders x 2 key orders.
    assert len(seen) == 8 and min(seen.values()) > 20

    args.xlco_mixup = False
    dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["xlco"], seed=0)
    sides = {len(example["xlco"]["query_input_ids"]) for example in take(dataset, 50)}
    assert sides == {3} and summary["xlco"]["examples"] == 2


def test_same_seed_same_stream_and_resume_mid_epoch(corpus_dir, tiny_tokenizer):
    objectives = ["mlm", "tlm", "xlco"]
    dataset, _ = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, objectives, seed=7)
    first = take(dataset, 300)  # several passes over the small languages
    assert take(dataset, 300) == first
    # A fresh build (cached tokens) resumed after 120 examples continues identically.
    again, _ = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, objectives, seed=7)
    assert list(itertools.islice(iter(again), 120, 300)) == first[120:]
    other, _ = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, objectives, seed=8)
    assert take(other, 300) != first


def test_each_pass_reshuffles(corpus_dir, tiny_tokenizer):
    args = make_args(corpus_dir, mono_data=[str(corpus_dir / "mono" / "de.txt")])
    dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm"], seed=0)
    blocks = summary["mlm"]["examples"]
    stream = [tuple(e["mlm"]["input_ids"]) for e in take(dataset, 3 * blocks)]
    passes = [stream[i * blocks : (i + 1) * blocks] for i in range(3)]
    assert all(sorted(p) == sorted(passes[0]) for p in passes)  # every pass covers every block once
    assert passes[0] != passes[1] != passes[2]


def test_streaming_gives_the_same_blocks(corpus_dir, tiny_tokenizer):
    cached, _ = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm", "tlm"], seed=3)
    streamed, summary = build_pretraining_dataset(
        make_args(corpus_dir, streaming=True, shuffle_buffer_size=0), tiny_tokenizer, ["mlm", "tlm"], seed=3
    )
    assert summary["streaming"] and summary["mlm"]["languages"]["en"]["sentences"] == 400
    counted = Counter(tuple(e["mlm"]["input_ids"]) for e in take(cached, 2000))
    streamed_counts = Counter(tuple(e["mlm"]["input_ids"]) for e in take(streamed, 2000))
    assert set(counted) == set(streamed_counts)  # same blocks, in another order


def test_cache_is_reused(corpus_dir, tiny_tokenizer):
    _, first = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm"], seed=0)
    files = sorted(p.name for p in (corpus_dir / "cache").rglob("*.arrow"))
    _, second = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm"], seed=0)
    assert sorted(p.name for p in (corpus_dir / "cache").rglob("*.arrow")) == files and first == second
    with open(corpus_dir / "mono" / "de.txt", "a") as f:  # a changed file is re-tokenized
        f.write("der hund\n")
    _, third = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm"], seed=0)
    assert third["mlm"]["languages"]["de"]["sentences"] == 26


def test_worker_shards_are_disjoint_and_complete(corpus_dir, tiny_tokenizer):
    import datasets

    from trainer.data.sources import TextFileCorpus

    rows = [[5 + i % 30] * (1 + i % 6) for i in range(3000)]
    table = datasets.Dataset.from_dict({"input_ids": rows, "length": [len(r) for r in rows]})
    segment = ArrowBlockSegment(table, 0, len(rows), 16, 0, 2)
    everything = [block for block, _ in segment.iter_pass((0, "x"), 0, 1)]
    shards = [[block for block, _ in segment.iter_pass((0, "x"), w, 3)] for w in range(3)]
    assert sorted(sum(shards, [])) == sorted(everything) and len(everything) == len(segment.blocks)

    lines = [" ".join(["the"] * (1 + i % 5)) + f" {i}" for i in range(2500)]  # unique sentences
    (corpus_dir / "big.en.txt").write_text("\n".join(lines) + "\n")
    corpus = TextFileCorpus(corpus_dir / "big.en.txt")
    stream = StreamBlockSegment(corpus, tiny_tokenizer, 64, 0, 2, shuffle_buffer_size=0)
    whole = [t for block, _ in stream.iter_pass((0,), 0, 1) for t in block if t not in (0, 2)]
    parts = [[t for b, _ in stream.iter_pass((0,), w, 2) for t in b if t not in (0, 2)] for w in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(whole) and parts[0] and parts[1]


def test_dataloader_workers(corpus_dir, tiny_tokenizer):
    dataset, _ = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm", "xlco"], seed=0)
    collator = InfoXLMDataCollator(tiny_tokenizer, generator=torch.Generator().manual_seed(0))

    def batches():
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=lambda x: x)
        return list(itertools.islice(loader, 6))

    first = batches()
    assert first == batches()  # deterministic with workers too
    assert first[0] != first[1]  # the two workers produce different examples
    assert collator(first[0])["xlco"]["query_input_ids"].shape[0] == 4


def test_data_arguments_command_line():
    parser = HfArgumentParser(DataArguments)
    (args,) = parser.parse_args_into_dataclasses(
        [
            "--mono_data",
            "a/*.txt",
            "b",
            "--no_xlco_mixup",
            "--parallel_heldout_every",
            "5",
            "--pad_to_multiple_of",
            "8",
        ]
    )
    assert args.mono_data == ["a/*.txt", "b"] and args.xlco_mixup is False
    assert args.parallel_heldout_every == 5 and args.pad_to_multiple_of == 8
    (defaults,) = parser.parse_args_into_dataclasses([])
    assert (defaults.max_seq_length, defaults.mlm_probability, defaults.language_sampling_alpha) == (512, 0.15, 0.3)
    assert defaults.xlco_mixup is True and defaults.streaming is False
    for bad in (
        {"max_seq_length": 4},
        {"mlm_probability": 1.5},
        {"language_sampling_alpha": -0.1},
        {"parallel_heldout_every": 1},
        {"pad_to_multiple_of": 0},
    ):
        with pytest.raises(ValueError, match="--" + next(iter(bad))):
            DataArguments(**bad)
    assert DataArguments(mono_dataset_name="m", dataset_config_name="en, fr").mono_dataset_configs == ["en", "fr"]


def test_parallel_tokenization_gives_the_same_data(corpus_dir, tiny_tokenizer):
    single, summary = build_pretraining_dataset(make_args(corpus_dir), tiny_tokenizer, ["mlm", "tlm"], seed=0)
    args = make_args(corpus_dir, preprocessing_num_workers=2, data_cache_dir=str(corpus_dir / "cache2"))
    parallel, parallel_summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm", "tlm"], seed=0)
    assert take(parallel, 100) == take(single, 100) and parallel_summary == summary


def test_seeded_collation_leaves_the_gpu_generators_alone(tiny_tokenizer, monkeypatch):
    """The collator's seed is the CPU generator's alone: GPU generators (dropout) are not reseeded per batch."""
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)
    collator = SeededCollator(InfoXLMDataCollator(tiny_tokenizer), seed=0)
    examples = [{"mlm": {"input_ids": [0, 5, 6, 7, 8, 2]}, "example_index": 4}] * 2
    torch.manual_seed(1)
    expected_after = torch.rand(3)
    torch.manual_seed(1)
    reseeded.clear()
    first, second = collator(examples), collator(examples)
    assert torch.equal(torch.rand(3), expected_after)  # the global CPU stream is restored
    assert torch.equal(first["mlm"]["labels"], second["mlm"]["labels"])  # same position, same masks
    assert reseeded == []
