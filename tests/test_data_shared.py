"""The shared corpora (../shared/data) load with the real XLM-R tokenizer; skipped when ../shared is absent.

All files are read and validated (streaming mode, so the test does not spend ~20 s tokenizing 3M tokens up
front); the cached map-style path runs on a few languages.
"""

import itertools

import pytest
from transformers import AutoTokenizer

from trainer import DataArguments, DataError, InfoXLMDataCollator, build_pretraining_dataset, load_heldout_pairs


@pytest.fixture(scope="module")
def xlmr_tokenizer():
    from helpers import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent; this test needs the shared corpora and the XLM-R tokenizer")
    return AutoTokenizer.from_pretrained(SHARED_DATA / "xlmr-tokenizer")


def count_lines(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def test_all_shared_corpora_load(shared_data, xlmr_tokenizer):
    args = DataArguments(
        mono_data=[str(shared_data / "mono" / "*.txt")],
        parallel_data=[str(shared_data / "tatoeba")],
        parallel_heldout_every=5,  # the Tatoeba README's split: i % 5 == 0 is evaluation
        streaming=True,
    )
    dataset, summary = build_pretraining_dataset(args, xlmr_tokenizer, ["mlm", "tlm", "xlco"], seed=0)
    mono_files = sorted((shared_data / "mono").glob("*.txt"))
    assert sorted(summary["mlm"]["languages"]) == [p.stem for p in mono_files]
    assert summary["mlm"]["languages"]["en"]["sentences"] == count_lines(shared_data / "mono" / "en.txt")
    pairs = summary["tlm"]["languages"]
    assert len(pairs) == len(list((shared_data / "tatoeba").glob("tatoeba.*-eng.eng"))) and "fra-eng" in pairs
    assert pairs["fra-eng"]["pairs"] == 800  # train split only: 4 of every 5 of the 1000 pairs
    assert sum(p["probability"] for p in pairs.values()) == pytest.approx(1.0)

    batch = InfoXLMDataCollator(xlmr_tokenizer, pad_to_multiple_of=8)(list(itertools.islice(iter(dataset), 8)))
    mlm, tlm = batch["mlm"], batch["tlm"]
    assert mlm["input_ids"].shape[1] <= 512 and mlm["input_ids"].shape[1] % 8 == 0
    assert (mlm["input_ids"][:, 0] == 0).all() and (tlm["input_ids"][:, 0] == 0).all()  # <s>
    assert (mlm["labels"] != -100).any() and (mlm["input_ids"] == 250001).any()  # <mask>
    assert batch["xlco"]["query_input_ids"].shape[0] == 8


def test_shared_corpora_cached(shared_data, xlmr_tokenizer, tmp_path):
    args = DataArguments(
        mono_data=[str(shared_data / "mono" / f"{lang}.txt") for lang in ("he", "ur", "ja")],
        parallel_data=[str(shared_data / "tatoeba" / f"tatoeba.{lang}-eng.eng") for lang in ("hin", "urd", "cmn")],
        parallel_heldout_every=5,
        data_cache_dir=str(tmp_path),
    )
    dataset, summary = build_pretraining_dataset(args, xlmr_tokenizer, ["mlm", "tlm", "xlco"], seed=0)
    for lang in ("he", "ur", "ja"):
        entry = summary["mlm"]["languages"][lang]
        assert entry["sentences"] == count_lines(shared_data / "mono" / f"{lang}.txt")
        assert entry["tokens"] > 10 * entry["sentences"] and entry["examples"] > 0
    for example in itertools.islice(iter(dataset), 50):
        assert len(example["mlm"]["input_ids"]) <= 512
        assert example["tlm"]["input_ids"][0] == 0 and example["tlm"]["input_ids"][-1] == 2


def test_shared_heldout_split(shared_data):
    args = DataArguments(parallel_data=[str(shared_data / "tatoeba")], parallel_heldout_every=5)
    heldout = load_heldout_pairs(args)
    french, english = heldout["fra-eng"]
    lines_fr = (shared_data / "tatoeba" / "tatoeba.fra-eng.fra").read_text(encoding="utf-8").splitlines()
    lines_en = (shared_data / "tatoeba" / "tatoeba.fra-eng.eng").read_text(encoding="utf-8").splitlines()
    assert french == [line.strip() for line in lines_fr[::5]] and english == [line.strip() for line in lines_en[::5]]
    assert len(french) == 200


def test_sentences_empty_after_tokenization(xlmr_tokenizer, tmp_path):
    # XLM-R's normalizer deletes U+200B (zero-width space): such a line is not blank but has no token.
    (tmp_path / "en.txt").write_text("the cat\n\u200b\nthe dog\n", encoding="utf-8")
    args = DataArguments(mono_data=[str(tmp_path / "en.txt")], data_cache_dir=str(tmp_path / "cache"))
    _, summary = build_pretraining_dataset(args, xlmr_tokenizer, ["mlm"], seed=0)
    assert summary["dropped"]["empty_after_tokenization"] == 1
    assert summary["mlm"]["languages"]["en"]["sentences"] == 2
    (tmp_path / "fr.txt").write_text("\u200b\n", encoding="utf-8")
    args.mono_data = [str(tmp_path / "fr.txt")]
    with pytest.raises(DataError, match=r"fr\.txt: no usable sentence after tokenization"):
        build_pretraining_dataset(args, xlmr_tokenizer, ["mlm"], seed=0)
