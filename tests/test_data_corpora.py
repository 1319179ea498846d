"""Reading corpora: formats, file naming, and a clear DataError for every kind of bad input."""

import gzip
import json

import datasets
import pytest

from trainer import DataArguments, DataError, build_pretraining_dataset, load_heldout_pairs, load_parallel_pairs
from trainer.data import find_mono_corpora, find_parallel_corpora


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def data_args(tmp_path, **overrides):
    return DataArguments(data_cache_dir=str(tmp_path / "cache"), max_seq_length=32, **overrides)


# ---- naming -------------------------------------------------------------------------------------------------------


def test_mono_languages_from_file_names(tmp_path):
    write(tmp_path / "en.txt", "the cat\n")
    write(tmp_path / "cc100.sw.txt", "habari\n")
    write(tmp_path / "zh-Hans.txt", "猫\n")
    with gzip.open(tmp_path / "fr.txt.gz", "wt", encoding="utf-8") as f:
        f.write("le chat\n")
    write(tmp_path / "README.md", "not data\n")
    corpora = find_mono_corpora([str(tmp_path)])
    assert sorted(c.language for c in corpora) == ["en", "fr", "sw", "zh-Hans"]
    gz = next(c for c in corpora if c.language == "fr")
    assert list(gz.iter_batches()) == [["le chat"]]


def test_mono_language_that_cannot_be_derived(tmp_path):
    bad = write(tmp_path / "english.txt", "the cat\n")
    with pytest.raises(DataError, match=r"english\.txt.*<lang>\.txt"):
        find_mono_corpora([str(bad)])
    with pytest.raises(DataError, match="english.txt"):  # also when found in a directory
        find_mono_corpora([str(tmp_path)])


def test_parallel_language_pair_that_cannot_be_derived(tmp_path):
    bad = write(tmp_path / "corpus.txt", "a\tb\n")
    with pytest.raises(DataError, match=r"corpus\.txt.*<name>\.<l1>-<l2>\.<l1>"):
        find_parallel_corpora([str(bad)])


def test_paths_globs_and_directories(tmp_path):
    write(tmp_path / "tatoeba.fra-eng.fra", "le chat\n")
    write(tmp_path / "tatoeba.fra-eng.eng", "the cat\n")
    write(tmp_path / "opus.de-en.tsv", "die Katze\tthe cat\n")
    write(tmp_path / "books.jsonl", json.dumps({"translation": {"en": "the cat", "it": "il gatto"}}) + "\n")
    write(tmp_path / "README.md", "# docs\n")
    by_dir = find_parallel_corpora([str(tmp_path)])
    assert sorted(c.pair for c in by_dir) == ["de-en", "en-it", "fra-eng"]
    # One side of a Moses pair is enough; naming both gives one corpus.
    one_side = find_parallel_corpora([str(tmp_path / "tatoeba.fra-eng.eng")])
    both = find_parallel_corpora([str(tmp_path / "tatoeba.fra-eng.*")])
    assert [c.pair for c in one_side] == [c.pair for c in both] == ["fra-eng"]
    assert list(both[0].iter_batches()) == [[("le chat", "the cat")]]
    with pytest.raises(DataError, match="does not exist"):
        find_parallel_corpora([str(tmp_path / "missing")])
    with pytest.raises(DataError, match="no file matches"):
        find_parallel_corpora([str(tmp_path / "*.xyz")])


def test_moses_pair_missing_a_side(tmp_path):
    write(tmp_path / "t.fr-en.fr", "le chat\n")
    with pytest.raises(DataError, match=r"t\.fr-en\.en"):
        find_parallel_corpora([str(tmp_path / "t.fr-en.fr")])


# ---- bad content ----------------------------------------------------------------------------------------------------


def test_misaligned_parallel_files_fail_before_anything_starts(tmp_path, tiny_tokenizer):
    write(tmp_path / "data" / "t.fr-en.fr", "le chat\nle chien\nla maison\n")
    write(tmp_path / "data" / "t.fr-en.en", "the cat\nthe dog\n")
    args = data_args(tmp_path, parallel_data=[str(tmp_path / "data")])
    with pytest.raises(DataError) as error:
        build_pretraining_dataset(args, tiny_tokenizer, ["tlm"], seed=0)
    message = str(error.value)
    assert "t.fr-en.fr has 3 lines" in message and "t.fr-en.en has 2" in message
    assert not (tmp_path / "cache").exists()  # nothing was tokenized or cached


@pytest.mark.parametrize("content", ["", "\n  \n\t\n"])
def test_empty_or_blank_file(tmp_path, tiny_tokenizer, content):
    write(tmp_path / "en.txt", "the cat\n")
    empty = write(tmp_path / "fr.txt", content)
    with pytest.raises(DataError, match=f"{empty}.*(empty|no usable line)"):
        build_pretraining_dataset(data_args(tmp_path, mono_data=[str(tmp_path)]), tiny_tokenizer, ["mlm"], seed=0)


def test_parallel_file_with_no_usable_pair(tmp_path, tiny_tokenizer):
    write(tmp_path / "t.fr-en.fr", "le chat\n\n")
    write(tmp_path / "t.fr-en.en", "\nthe dog\n")
    with pytest.raises(DataError, match=r"t\.fr-en.*no usable line"):
        build_pretraining_dataset(data_args(tmp_path, parallel_data=[str(tmp_path)]), tiny_tokenizer, ["tlm"], seed=0)


def test_invalid_utf8_names_file_and_line(tmp_path, tiny_tokenizer):
    bad = write(tmp_path / "de.txt", b"die Katze\nder Hund\nein \xff Haus\n")
    with pytest.raises(DataError, match=rf"{bad}, line 3: invalid UTF-8"):
        build_pretraining_dataset(data_args(tmp_path, mono_data=[str(bad)]), tiny_tokenizer, ["mlm"], seed=0)


def test_corrupt_gzip_names_the_file(tmp_path):
    bad = write(tmp_path / "en.txt.gz", b"this is not gzip data\n")
    with pytest.raises(DataError, match=rf"{bad}: cannot read it"):
        find_mono_corpora([str(bad)])[0].scan()


def test_tsv_with_wrong_number_of_columns(tmp_path):
    bad = write(tmp_path / "x.de-en.tsv", "die Katze\tthe cat\nder Hund the dog\n")
    (corpus,) = find_parallel_corpora([str(bad)])
    with pytest.raises(DataError, match=rf"{bad}, line 2: expected 2 tab-separated columns.*found 1"):
        corpus.scan()


def test_jsonl_errors(tmp_path):
    good = {"translation": {"en": "the cat", "fr": "le chat"}}
    missing = write(tmp_path / "a.jsonl", f"{json.dumps(good)}\n" + json.dumps({"translation": {"en": "x"}}) + "\n")
    (corpus,) = find_parallel_corpora([str(missing)])
    assert corpus.pair == "en-fr"
    with pytest.raises(DataError, match=rf"{missing}, line 2: missing language key 'fr'"):
        corpus.scan()
    broken = write(tmp_path / "b.en-fr.jsonl", f"{json.dumps(good)}\n{{not json\n")
    with pytest.raises(DataError, match=rf"{broken}, line 2: invalid JSON"):
        find_parallel_corpora([str(broken)])[0].scan()
    three = write(tmp_path / "c.jsonl", json.dumps({"translation": {"en": "a", "fr": "b", "de": "c"}}) + "\n")
    with pytest.raises(DataError, match=r"c\.jsonl, line 1: cannot tell the language pair.*<l1>-<l2>\.jsonl"):
        find_parallel_corpora([str(three)])
    # The file name picks two of the languages.
    (named,) = find_parallel_corpora([str(write(tmp_path / "d.de-en.jsonl", three.read_text()))])
    assert list(named.iter_batches()) == [[("c", "a")]]


def test_blank_lines_and_blank_pairs_are_skipped_and_counted(tmp_path, tiny_tokenizer):
    write(tmp_path / "mono" / "en.txt", "\ufeffthe cat\n\n   \nthe dog\r\n")
    write(tmp_path / "para" / "t.fr-en.fr", "le chat\n\nle chien\nla maison\n")
    write(tmp_path / "para" / "t.fr-en.en", "the cat\nthe mat\n\t\nthe house\n")
    write(tmp_path / "para" / "x.de-en.tsv", "die Katze\tthe cat\n\t\nder Hund\t\n")
    args = data_args(tmp_path, mono_data=[str(tmp_path / "mono")], parallel_data=[str(tmp_path / "para")])
    dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm", "tlm"], seed=0)
    assert summary["dropped"]["blank_lines"] == 2
    assert summary["dropped"]["blank_pairs"] == 2 + 2
    assert summary["mlm"]["languages"]["en"]["sentences"] == 2
    assert summary["tlm"]["languages"]["fr-en"]["pairs"] == 2
    assert summary["tlm"]["languages"]["de-en"]["pairs"] == 1
    example = next(iter(dataset))
    words = tiny_tokenizer.convert_ids_to_tokens(example["mlm"]["input_ids"])
    assert words in (["<s>", "the", "cat", "</s>", "the", "dog", "</s>"],)  # BOM and \r are gone


def test_truncation_is_counted(tmp_path, tiny_tokenizer):
    write(tmp_path / "en.txt", "the cat\n" + "the " * 100 + "\n")
    write(tmp_path / "t.fr-en.fr", "le " * 40 + "\nle chat\n")
    write(tmp_path / "t.fr-en.en", "the " * 40 + "\nthe cat\n")
    args = data_args(tmp_path, mono_data=[str(tmp_path / "en.txt")], parallel_data=[str(tmp_path / "t.fr-en.fr")])
    dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm", "tlm", "xlco"], seed=0)
    assert summary["mlm"]["languages"]["en"]["truncated"] == 1
    assert summary["tlm"]["languages"]["fr-en"]["truncated"] == 1
    for _, example in zip(range(50), dataset):
        assert len(example["mlm"]["input_ids"]) <= 32 and len(example["tlm"]["input_ids"]) <= 32
        assert len(example["xlco"]["query_input_ids"]) <= 32 and len(example["xlco"]["key_input_ids"]) <= 32


def test_missing_data_for_an_objective(tmp_path, tiny_tokenizer):
    write(tmp_path / "en.txt", "the cat\n")
    args = data_args(tmp_path, mono_data=[str(tmp_path / "en.txt")])
    with pytest.raises(DataError, match="--parallel_data"):
        build_pretraining_dataset(args, tiny_tokenizer, ["mlm", "xlco"], seed=0)
    with pytest.raises(DataError, match="--mono_data"):
        build_pretraining_dataset(data_args(tmp_path), tiny_tokenizer, ["mlm"], seed=0)
    with pytest.raises(ValueError, match="objectives"):
        build_pretraining_dataset(args, tiny_tokenizer, ["mlm", "nsp"], seed=0)


# ---- held-out split -------------------------------------------------------------------------------------------------


def write_numbered_pair(directory, count, blank_at=()):
    fr = [("" if i in blank_at else f"fr{i}") for i in range(count)]
    en = [f"en{i}" for i in range(count)]
    write(directory / "t.fr-en.fr", "\n".join(fr) + "\n")
    write(directory / "t.fr-en.en", "\n".join(en) + "\n")


def test_heldout_pairs_are_exactly_the_excluded_ones(tmp_path, tiny_tokenizer):
    write_numbered_pair(tmp_path / "para", 23, blank_at={7})
    pattern = [str(tmp_path / "para")]
    heldout = load_parallel_pairs(pattern, split="eval", heldout_every=5)
    assert heldout == {"fr-en": ([f"fr{i}" for i in range(0, 23, 5)], [f"en{i}" for i in range(0, 23, 5)])}
    train = load_parallel_pairs(pattern, split="train", heldout_every=5)["fr-en"][0]
    assert train == [f"fr{i}" for i in range(23) if i % 5 and i != 7]
    assert len(load_parallel_pairs(pattern, split="all")["fr-en"][0]) == 22
    assert load_parallel_pairs(pattern, split="all", max_pairs=3)["fr-en"][1] == ["en0", "en1", "en2"]

    args = data_args(tmp_path, parallel_data=pattern, parallel_heldout_every=5)
    assert load_heldout_pairs(args, tiny_tokenizer) == heldout
    _, summary = build_pretraining_dataset(args, tiny_tokenizer, ["tlm"], seed=0)
    assert summary["dropped"]["heldout_pairs"] == 5 and summary["tlm"]["languages"]["fr-en"]["pairs"] == 17
    assert load_heldout_pairs(data_args(tmp_path, parallel_data=pattern)) == {}


# ---- 🤗 datasets ---------------------------------------------------------------------------------------------------


def test_hf_datasets_by_name(tmp_path, tiny_tokenizer):
    mono = datasets.Dataset.from_dict({"id": [1, 2, 3], "text": ["the cat", "", "the dog sat"]})
    mono.save_to_disk(str(tmp_path / "mono_ds"))
    rows = [{"en": f"the cat {i}", "fr": f"le chat {i}"} for i in range(10)] + [{"en": "the dog", "fr": ""}]
    features = datasets.Features({"translation": datasets.Translation(languages=["en", "fr"])})
    datasets.Dataset.from_dict({"translation": rows}, features=features).save_to_disk(str(tmp_path / "para_ds"))
    for streaming in (False, True):
        args = data_args(
            tmp_path,
            mono_dataset_name=str(tmp_path / "mono_ds"),
            parallel_dataset_name=str(tmp_path / "para_ds"),
            parallel_heldout_every=5,
            streaming=streaming,
        )
        dataset, summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm", "tlm", "xlco"], seed=0)
        (pair,) = summary["tlm"]["languages"]
        assert pair == "en-fr"
        example = next(iter(dataset))
        assert example["tlm"]["input_ids"][0] == tiny_tokenizer.bos_token_id
        if not streaming:
            assert summary["mlm"]["languages"]["mono_ds"]["sentences"] == 2
            assert summary["dropped"] == {
                "blank_lines": 1,
                "blank_pairs": 1,
                "heldout_pairs": 2,
                "empty_after_tokenization": 0,
            }
        assert load_heldout_pairs(args) == {"en-fr": (["the cat 0", "the cat 5"], ["le chat 0", "le chat 5"])}


def test_hf_dataset_without_text_column(tmp_path, tiny_tokenizer):
    datasets.Dataset.from_dict({"a": ["x"], "b": ["y"]}).save_to_disk(str(tmp_path / "ds"))
    args = data_args(tmp_path, mono_dataset_name=str(tmp_path / "ds"))
    with pytest.raises(DataError, match="--text_column_name"):
        build_pretraining_dataset(args, tiny_tokenizer, ["mlm"], seed=0)
    args.text_column_name = "b"
    _, summary = build_pretraining_dataset(args, tiny_tokenizer, ["mlm"], seed=0)
    assert summary["mlm"]["languages"]["ds"]["sentences"] == 1
