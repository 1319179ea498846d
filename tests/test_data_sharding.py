"""Data for many ranks: every (rank, DataLoader worker) shard reads and tokenizes only its own part of the corpora,
and the union of the shards still samples languages by α."""

import itertools
from pathlib import Path

import pytest
from helpers import LANGUAGE_WORDS, corpus_dataset, tiny_trainer, write_tiny_corpus

from trainer.data import find_mono_corpora, find_parallel_corpora, sources, streams
from trainer.data.dataset import PretrainingIterator


@pytest.fixture(autouse=True)
def small_reader_chunks(monkeypatch):
    """Reader chunks of 16 lines instead of 1,000, so that the tiny corpora span several chunks per shard."""
    monkeypatch.setattr(sources, "SHARD_CHUNK", 16)


def write_unique_corpus(root: Path) -> Path:
    """Monolingual en (300 lines) and fr (120), and fr-en pairs (90): every line different, so that who tokenized
    which line can be told from the text alone."""
    (root / "mono").mkdir(parents=True)
    (root / "parallel").mkdir()
    for language, size in (("en", 300), ("fr", 120)):
        words = LANGUAGE_WORDS[language]
        lines = [f"{words[i % len(words)]} {words[(i // 3) % len(words)]} line{i}" for i in range(size)]
        (root / "mono" / f"{language}.txt").write_text("\n".join(lines) + "\n")
    (root / "parallel" / "t.fr-en.fr").write_text("".join(f"le chat pair{i}\n" for i in range(90)))
    (root / "parallel" / "t.fr-en.en").write_text("".join(f"the cat pair{i}\n" for i in range(90)))
    return root


def test_each_rank_tokenizes_only_its_own_lines(tmp_path, tiny_tokenizer, monkeypatch):
    root = write_unique_corpus(tmp_path)
    everything = {line for path in root.rglob("*.*") for line in path.read_text().splitlines()}
    tokenized_by: dict[int, list[str]] = {}
    rank = None

    def recording_encode(tokenizer, texts):
        tokenized_by[rank].extend(texts)
        return encode(tokenizer, texts)

    encode = streams.encode
    monkeypatch.setattr(streams, "encode", recording_encode)
    dataset = corpus_dataset(tiny_tokenizer, root, objectives=("mlm", "tlm"), streaming=True)
    for rank in (0, 1):
        tokenized_by[rank] = []
        # 400 items: several passes over each rank's share of every corpus.
        items = list(itertools.islice(iter(dataset.shard_for_rank(rank, 2, 4)), 400))
        assert [item["example_index"] for item in items[:3]] == [rank, 2 + rank, 4 + rank]  # unique across ranks
    ours, theirs = set(tokenized_by[0]), set(tokenized_by[1])
    assert not ours & theirs  # before: every rank tokenized every line and kept one batch in two
    assert ours | theirs == everything
    assert 0.3 < len(ours) / len(everything) < 0.7


def test_one_rank_reads_the_unsharded_stream(tmp_path, tiny_tokenizer):
    dataset = corpus_dataset(tiny_tokenizer, write_tiny_corpus(tmp_path))
    alone = list(itertools.islice(iter(dataset), 30))
    assert list(itertools.islice(iter(dataset.shard_for_rank(0, 1, 4)), 30)) == alone
    assert list(itertools.islice(iter(dataset.shard_for_rank(1, 2, 4)), 30)) != alone


def test_the_union_of_shards_samples_languages_by_alpha(tmp_path, tiny_tokenizer):
    dataset = corpus_dataset(tiny_tokenizer, write_tiny_corpus(tmp_path), ("mlm",), language_sampling_alpha=0.5)
    ids = {language: set(tiny_tokenizer.convert_tokens_to_ids(words)) for language, words in LANGUAGE_WORDS.items()}
    # 2 ranks x 2 DataLoader workers, simulated in this process: four shards with random streams of their own.
    shards = [PretrainingIterator(dataset.shard_for_rank(r, 2, 4), w, 2) for r in (0, 1) for w in (0, 1)]
    items = [list(itertools.islice(shard, 600)) for shard in shards]
    assert len({tuple(tuple(item["mlm"]["input_ids"]) for item in share[:10]) for share in items}) == 4
    counts = dict.fromkeys(ids, 0)
    for item in itertools.chain(*items):
        first_word = item["mlm"]["input_ids"][1]  # after <s>; a block holds sentences of one language
        (language,) = [language for language, words in ids.items() if first_word in words]
        counts[language] += 1
    # p ∝ n^α over the sentences per language (300, 120, 40), computed here by hand.
    weights = {"en": 300**0.5, "fr": 120**0.5, "de": 40**0.5}
    for language, weight in weights.items():
        expected = weight / sum(weights.values())
        # 2,400 draws: a standard deviation of at most 0.01; 4 of them.
        assert abs(counts[language] / 2400 - expected) < 0.04, (language, counts)


def test_memory_is_pinned_only_for_a_gpu(tmp_path, tiny_tokenizer):
    dataset = corpus_dataset(tiny_tokenizer, write_tiny_corpus(tmp_path))
    trainer = tiny_trainer(
        tiny_tokenizer, tmp_path / "run", max_steps=6, dataset=dataset, use_cpu=False
    )  # as run_pretrain.py leaves it
    assert trainer.args.dataloader_pin_memory  # transformers' default, asked for whatever the device
    on_gpu = trainer.args.device.type == "cuda"
    assert trainer.get_train_dataloader().pin_memory is on_gpu
    # Workers by default only where a GPU trains (on a CPU they would take cores from the model), kept alive.
    workers = trainer.args.dataloader_num_workers
    assert (workers, trainer.args.dataloader_persistent_workers) == ((2, True) if on_gpu else (0, False))


def test_prepare_data_only_fills_the_cache_that_training_then_reads(tmp_path, tiny_tokenizer, capsys):
    import run_pretrain

    corpus, cache = write_tiny_corpus(tmp_path / "corpus"), tmp_path / "cache"
    tiny_tokenizer.save_pretrained(tmp_path / "tokenizer")
    arguments = [
        "--tokenizer_name", str(tmp_path / "tokenizer"), "--mono_data", str(corpus / "mono"),
        "--parallel_data", str(corpus / "parallel"), "--data_cache_dir", str(cache), "--max_seq_length", "24",
        "--config_overrides", "hidden_size=16,num_hidden_layers=2,num_attention_heads=2,intermediate_size=32",
        "--xlco_layer", "1", "--xlco_queue_size", "16", "--xlco_queue_fill", "masked",
        "--per_device_train_batch_size", "4", "--max_steps", "1", "--output_dir", str(tmp_path / "run"),
        "--use_cpu", "true", "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no",
    ]  # fmt: skip
    assert run_pretrain.main([*arguments, "--prepare_data_only", "true"]) is None
    assert "Data prepared: 5 corpora tokenized into the cache in " + str(cache) in capsys.readouterr().out
    assert not (tmp_path / "run").exists()  # nothing of a run is written
    prepared = sorted(cache.rglob("*.arrow"))
    assert prepared
    trainer = run_pretrain.main(arguments)
    assert trainer.state.global_step == 1
    assert sorted(cache.rglob("*.arrow")) == prepared  # training read the prepared cache, tokenized nothing


def test_a_shard_seeks_to_its_own_chunks_of_a_file_and_reads_what_a_full_read_gives(tmp_path):
    lines = [f"the cat {i}" if i % 7 else "" for i in range(100)]  # blank lines too; 7 chunks of 16
    (tmp_path / "en.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "t.fr-en.fr").write_text("".join(f"le chat {i}\n" for i in range(100)))
    (tmp_path / "t.fr-en.en").write_text("".join(f"the cat {i}\n" for i in range(100)))
    (tmp_path / "t.fr-en.tsv").write_text("".join(f"le chat {i}\tthe cat {i}\n" for i in range(100)))
    rows = [f'{{"translation": {{"fr": "le {i}", "en": "the {i}"}}}}\n' for i in range(100)]
    (tmp_path / "t.fr-en.jsonl").write_text("".join(rows))
    corpora = find_mono_corpora([str(tmp_path / "en.txt")]) + find_parallel_corpora(
        [str(tmp_path / name) for name in ("t.fr-en.fr", "t.fr-en.tsv", "t.fr-en.jsonl")], heldout_every=5
    )
    for corpus in corpora:
        read = corpus.iter_lines if corpus.kind == "mono" else corpus.iter_rows
        everything = list(read())  # before scan(): no chunk offsets, every line read
        corpus.scan()
        assert corpus.starts is not None and None not in tuple(corpus.starts)
        for start_row in (0, 32):
            shards = [list(read(shard, 3, start_row)) for shard in range(3)]
            assert sorted(itertools.chain(*shards)) == everything[start_row:], corpus
            assert all(sources.owns_line(row[0], shard, 3) for shard in range(3) for row in shards[shard])
