"""The CLDR demo corpus: coverage, the skip rule, held-out isolation, determinism, and the project's readers."""

import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from trainer.data import find_mono_corpora, find_parallel_corpora
from trainer.data.cldr import NAME_CATEGORIES, PHRASE_CATEGORIES, category, cldr_entries
from trainer.data.demo_corpus import DEMO_LOCALES, LOCALE_SCRIPTS, heldout_keys, write_demo_corpus

TRAINER_DIR = Path(__file__).resolve().parents[1] / "trainer"

# First word of the Unicode character names of each script's letters (written independently of the module).
SCRIPT_NAMES = {
    "Latn": ("LATIN",),
    "Cyrl": ("CYRILLIC",),
    "Arab": ("ARABIC",),
    "Deva": ("DEVANAGARI",),
    "Hans": ("CJK",),
    "Hant": ("CJK",),
    "Jpan": ("CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"),
    "Kore": ("HANGUL",),
    "Grek": ("GREEK",),
    "Hebr": ("HEBREW",),
    "Thai": ("THAI",),
    "Geor": ("GEORGIAN",),
    "Armn": ("ARMENIAN",),
    "Beng": ("BENGALI",),
    "Taml": ("TAMIL",),
    "Ethi": ("ETHIOPIC",),
    "Telu": ("TELUGU",),
    "Mlym": ("MALAYALAM",),
    "Gujr": ("GUJARATI",),
    "Khmr": ("KHMER",),
    "Sinh": ("SINHALA",),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cldr") / "corpus"
    write_demo_corpus(out)
    return out


def read_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_pairs(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t")) for line in path.read_text(encoding="utf-8").splitlines()]


def letter_families(text: str) -> Counter:
    return Counter(unicodedata.name(ch, "?").split()[0] for ch in text if ch.isalpha())


def test_locales_and_scripts_are_in_the_files(corpus):
    files = sorted((corpus / "mono").glob("*.txt"))
    assert len(files) == len(DEMO_LOCALES) >= 30
    dominant = set()
    for path in files:
        families = letter_families(path.read_text(encoding="utf-8"))
        expected = SCRIPT_NAMES[LOCALE_SCRIPTS[path.stem]]
        share = sum(n for family, n in families.items() if family in expected) / sum(families.values())
        assert share > 0.95, (path.stem, families.most_common(3))
        dominant.add(families.most_common(1)[0][0])
    assert len(dominant) >= 8, dominant
    # Hans and Hant share Unicode names: tell them apart by their text.
    assert cldr_entries("zh_Hans")["territory:DE"] == "德国"
    assert cldr_entries("zh_Hant")["territory:DE"] == "德國"


def test_entry_counts_and_clean_text():
    counts = []
    for locale in DEMO_LOCALES:
        entries = cldr_entries(locale)
        counts.append(len(entries))
        assert list(entries) == sorted(entries)
        for text in entries.values():
            assert text == text.strip() and not re.search(r"[\t\n\r]|\s\s", text)
        assert {category(k) for k in entries} >= set(PHRASE_CATEGORIES) - {"compact"}  # ja has no long compact form
    assert 1000 <= min(counts) and max(counts) <= 4000


def test_no_entry_is_a_code_or_a_fallback():
    english = cldr_entries("en")
    for locale in DEMO_LOCALES:
        for key, text in cldr_entries(locale).items():
            code = key.split(":")[1]
            if category(key) in NAME_CATEGORIES and text.casefold() == code.casefold():
                assert english[key].casefold() == code.casefold(), (locale, key)  # 'Thai' is English for Thai
            if category(key) in ("unit", "unit-name", "money"):
                assert not re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text), (locale, key, text)
            if locale != "en":
                assert text != english[key], (locale, key)
                assert not re.fullmatch(r"M\d\d", text) and not re.fullmatch(r"[+-]\d+ \w", text), (locale, key)


def test_spot_checks_against_known_translations():
    assert cldr_entries("fr")["territory:DE"] == "Allemagne"
    assert cldr_entries("de")["weekday:format:wide:0"] == "Montag"
    assert cldr_entries("en")["list:and:FR,DE"] == "France and Germany"
    assert cldr_entries("de")["relative:+2:week"] == "in 2 Wochen"
    assert cldr_entries("ru")["relative:-3:day"] == "3 дня назад"
    assert cldr_entries("ru")["unit:length-kilometer:21"] == "21 километр"  # plural category "one"
    assert cldr_entries("zh_Hant")["unit:length-kilometer:12"] == "12 公里"  # long form inherited from short
    # babel 2.18 leaks one locale's alias-resolved stand-alone names into others (python-babel/babel#1234).
    assert cldr_entries("ru")["quarter:stand-alone:wide:1"] == "1-й квартал"
    assert cldr_entries("fr")["quarter:stand-alone:wide:1"] == "1er trimestre"


def test_heldout_pairs_never_reach_training(corpus):
    english = cldr_entries("en")
    heldout = heldout_keys()
    assert {category(k) for k in heldout} == set(PHRASE_CATEGORIES)
    heldout_english = {english[k] for k in heldout}
    heldout_text = {loc: {t for k, t in cldr_entries(loc).items() if k in heldout} for loc in DEMO_LOCALES}
    for locale in DEMO_LOCALES[1:]:
        evaluation = read_pairs(corpus / "heldout" / f"cldr.en-{locale}.tsv")
        sources, targets = zip(*evaluation)
        assert len(set(sources)) == len(set(targets)) == len(evaluation)  # distinct retrieval candidates
        # The same keys for every locale: the English side is the held-out English text, nearly all of it.
        assert set(sources) <= heldout_english and len(evaluation) >= 0.8 * len(heldout)
    for path in (corpus / "parallel").glob("*.tsv"):
        l1, l2 = path.name.split(".")[1].split("-")
        for source, target in read_pairs(path):
            assert source not in heldout_text[l1] and target not in heldout_text[l2], (path.name, source, target)


def test_files_parse_with_the_project_readers(corpus):
    mono = find_mono_corpora([str(corpus / "mono")])
    assert sorted(c.language for c in mono) == sorted(DEMO_LOCALES)
    for reader in mono:
        assert reader.scan().used == len(set(cldr_entries(reader.language).values()))
    parallel = find_parallel_corpora([str(corpus / "parallel")])
    pairs = {c.pair for c in parallel}
    assert {"en-zh_Hant", "en-sr_Latn", "en-sw", "fr-de"} <= pairs and len(pairs) == len(DEMO_LOCALES) - 1 + 6
    for reader in parallel:
        assert reader.scan().blank == 0
    first = next(next(c for c in parallel if c.pair == "en-fr").iter_batches(batch_size=5))
    assert len(first) == 5 and all(src and tgt for src, tgt in first)
    heldout = find_parallel_corpora([str(corpus / "heldout")])
    assert len(heldout) == len(DEMO_LOCALES) - 1 and all(c.scan().used > 20 for c in heldout)


def test_same_seed_same_bytes_other_seed_other_heldout(corpus, tmp_path):
    write_demo_corpus(tmp_path / "again")
    assert read_files(tmp_path / "again") == read_files(corpus)
    # Another process, another hash seed, and babel's shared data polluted first: still the same bytes.
    script = (
        "import sys, types\n"
        "package = types.ModuleType('trainer'); package.__path__ = [sys.argv[1]]\n"
        "sys.modules['trainer'] = package  # skip trainer/__init__ (torch): only the corpus modules are needed\n"
        "from babel import Locale\n"
        "Locale.parse('fr').quarters['stand-alone']['wide'][1]\n"
        "from trainer.data.demo_corpus import write_demo_corpus\n"
        "write_demo_corpus(sys.argv[2])\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(TRAINER_DIR), str(tmp_path / "other")], env=env, check=True)
    assert read_files(tmp_path / "other") == read_files(corpus)

    assert heldout_keys(seed=1) != heldout_keys(seed=0)
    summary = write_demo_corpus(tmp_path / "seed1", seed=1)
    assert summary["heldout_keys"] == sorted(heldout_keys(seed=1))
    assert (tmp_path / "seed1/heldout/cldr.en-fr.tsv").read_bytes() != (corpus / "heldout/cldr.en-fr.tsv").read_bytes()


def test_existing_corpus_is_reused_or_replaced(tmp_path):
    out = tmp_path / "corpus"
    locales = ("en", "fr", "ja")
    write_demo_corpus(out, locales=locales)
    stamp = (out / "mono/fr.txt").stat().st_mtime_ns
    write_demo_corpus(out, locales=locales)
    assert (out / "mono/fr.txt").stat().st_mtime_ns == stamp  # same parameters: nothing rewritten
    summary = write_demo_corpus(out, locales=locales, seed=3)
    assert summary["parameters"]["seed"] == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
    # A write cut short leaves `corpus.tmp` behind: the next write starts afresh, so none of its files get in.
    (tmp_path / "corpus.tmp" / "mono").mkdir(parents=True)
    (tmp_path / "corpus.tmp" / "mono" / "xx.txt").write_text("stray\n")
    summary = write_demo_corpus(out, locales=locales, seed=4)
    assert summary["parameters"]["seed"] == 4 and sorted(p.name for p in (out / "mono").iterdir()) == [
        f"{locale}.txt" for locale in sorted(locales)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        write_demo_corpus(tmp_path / "mine", locales=locales)
    with pytest.raises(ValueError, match="cannot name a corpus file"):
        write_demo_corpus(tmp_path / "bad", locales=("en", "zh-Hant"))


def test_a_corpus_that_cannot_take_the_place_of_the_old_one_leaves_it_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "corpus"
    write_demo_corpus(out, locales=("en", "fr"))
    before = read_files(out)
    real_replace = os.replace

    def replace(source, target):  # the file system refuses the new corpus its place (full, read-only, ...)
        if os.fspath(source).endswith("corpus.tmp"):
            raise OSError("no space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="no space left"):
        write_demo_corpus(out, locales=("en", "fr"), seed=5)
    assert read_files(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
