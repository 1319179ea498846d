"""A small multilingual demo corpus built from the Unicode CLDR data that babel ships.

The same key in two locales is a translation pair (cldr.py: the entries of a locale and the skip rule). That makes
an offline, licence-clean corpus for trying the whole pipeline (MLM, TLM, XLCO and retrieval evaluation) on ~40
languages in ~20 scripts without downloading anything.

Layout written by `write_demo_corpus(out_dir)` (the readers of `trainer.data.sources` accept it as is):

    mono/<locale>.txt                  every phrase of a locale once, seeded shuffle (--mono_data out/mono)
    parallel/cldr.<pivot>-<locale>.tsv pivot<TAB>locale pairs, held-out keys excluded (--parallel_data out/parallel)
    parallel/cldr.<l1>-<l2>.tsv        a few non-pivot pairs (fr-de, ...), held-out keys excluded
    heldout/cldr.<pivot>-<locale>.tsv  held-out pairs for retrieval (--retrieval_eval_data out/heldout)
    summary.json, README.md            parameters, counts per locale/category, skips per reason

Held-out keys are phrase keys (dates, lists, relative times, quantities, money, compact numbers) picked by a seeded
hash of the key, the same keys for every locale. Their pairs never reach a parallel training file, but their
sentences do appear in the monolingual files by default: as in the paper's retrieval evaluation, seeing a
sentence alone is fine, seeing it aligned with its translation is not.

Also here, for models trained from scratch (the demo's, experiments/'): `train_tokenizer`, a small XLM-R-style
tokenizer trained on the pretraining text itself. XLM-R's own (SentencePiece unigram, 250k pieces) would make the
embedding and the vocabulary projection of a tiny model hundreds of times larger than its encoder. This trains a
byte-pair vocabulary of a few thousand pieces with XLM-R's conventions instead: the same special tokens at the same
ids (`<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>`), the same `▁` word-boundary marker and the same pair layout
`<s> A </s></s> B </s>`, so every part of the pipeline treats it exactly like XLM-R's. BPE rather than unigram
because it trains in seconds (unigram EM takes a minute on 80k sentences on two cores).
"""

import hashlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import babel
from babel.core import get_cldr_version
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from ..output_folder import write_files_atomically
from .cldr import ENGLISH, PHRASE_CATEGORIES, SKIP_RULE, category, cldr_entries, likely_script, skipped_counts
from .sources import PAIR_CODE

FORMAT_VERSION = 1

# ~40 locales with good CLDR coverage, 21 scripts. Script subtags are explicit where a language has two (zh, sr).
DEMO_LOCALES: tuple[str, ...] = (
    # Latin
    "en", "sw", "fr", "de", "es", "it", "pt", "nl", "pl", "tr", "vi", "id", "fi", "sr_Latn",
    # Cyrillic
    "ru", "uk", "bg", "sr_Cyrl",
    # Arabic
    "ar", "fa", "ur",
    # Devanagari
    "hi", "mr",
    # Han (simplified, traditional), Japanese, Korean
    "zh_Hans", "zh_Hant", "ja", "ko",
    # one locale each
    "el", "he", "th", "ka", "hy", "bn", "ta", "am", "te", "ml", "gu", "km", "si",
)  # fmt: skip

# Non-pivot pairs written when both locales are in the corpus, so that not every pair goes through English.
EXTRA_PAIRS: tuple[tuple[str, str], ...] = (
    ("fr", "de"), ("es", "pt"), ("ru", "uk"), ("zh_Hans", "ja"), ("ar", "fa"), ("hi", "bn"),
)  # fmt: skip

LOCALE_SCRIPTS: dict[str, str] = {locale: likely_script(locale) for locale in DEMO_LOCALES}


# --------------------------------------------------------------------------------------------------------------------
# Held-out keys


def _rank(seed: int, key: str) -> str:
    """A seeded, hash-seed-independent order of keys."""
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def heldout_keys(pivot: str = ENGLISH, fraction: float = 0.1, seed: int = 0) -> frozenset[str]:
    """Phrase keys held out for retrieval: `fraction` of each phrase category of the pivot (at least one), by rank."""
    if not 0 <= fraction < 1:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {fraction}")
    chosen: set[str] = set()
    keys = cldr_entries(pivot)
    for cat in PHRASE_CATEGORIES:
        members = sorted((k for k in keys if category(k) == cat), key=lambda k: _rank(seed, k))
        count = max(1, round(fraction * len(members))) if fraction > 0 and members else 0
        chosen.update(members[:count])
    return frozenset(chosen)


# --------------------------------------------------------------------------------------------------------------------
# Writing the corpus


def _check_locale(locale: str):
    if not re.fullmatch(PAIR_CODE, locale):
        raise ValueError(
            f"locale {locale!r} cannot name a corpus file: use babel's form with '_' (zh_Hant, sr_Latn), "
            "as trainer.data.sources reads language codes from file names"
        )


def _write_lines(path: Path, lines: list[str]) -> dict:
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"lines": len(lines), "bytes": len(data)}


def _training_pairs(l1: str, l2: str, heldout: frozenset[str], rng: random.Random) -> tuple[list[str], int]:
    """Shuffled unique 'l1<TAB>l2' lines of the non-held-out keys both locales have, and how many pairs the leak
    guard dropped (a held-out sentence of either language, reached through another key with the same text)."""
    first, second = cldr_entries(l1), cldr_entries(l2)
    banned_first = {first[k] for k in heldout if k in first}
    banned_second = {second[k] for k in heldout if k in second}
    lines, leaks = {}, 0
    for key in sorted(first.keys() & second.keys() - heldout):
        if first[key] in banned_first or second[key] in banned_second:
            leaks += 1
        else:
            lines.setdefault(f"{first[key]}\t{second[key]}", None)
    lines = list(lines)
    rng.shuffle(lines)
    return lines, leaks


def _heldout_pairs(pivot: str, locale: str, heldout: frozenset[str]) -> tuple[list[str], int]:
    """'pivot<TAB>locale' lines of the held-out keys in key order, and how many were dropped because a text was
    already a candidate on its side (retrieval needs distinct candidates)."""
    first, second = cldr_entries(pivot), cldr_entries(locale)
    seen_first, seen_second, lines, duplicates = set(), set(), [], 0
    for key in sorted(heldout & first.keys() & second.keys()):
        if first[key] in seen_first or second[key] in seen_second:
            duplicates += 1
            continue
        seen_first.add(first[key])
        seen_second.add(second[key])
        lines.append(f"{first[key]}\t{second[key]}")
    return lines, duplicates


def _parameters(locales, pivot, heldout_fraction, seed, extra_pairs, mono_includes_heldout) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "babel": babel.__version__,
        "cldr": get_cldr_version(),
        "locales": list(locales),
        "pivot": pivot,
        "heldout_fraction": heldout_fraction,
        "seed": seed,
        "extra_pairs": [list(pair) for pair in extra_pairs],
        "mono_includes_heldout": mono_includes_heldout,
    }


def _build(out: Path, parameters: dict) -> dict:
    """Write every file of the corpus into `out` (an empty folder) and return the summary."""
    locales, pivot, seed = parameters["locales"], parameters["pivot"], parameters["seed"]
    heldout = heldout_keys(pivot, parameters["heldout_fraction"], seed)
    files, per_locale = {}, {}

    def write(relative: str, lines: list[str]):
        files[relative] = _write_lines(out / relative, lines)

    for locale in locales:
        entries = cldr_entries(locale)
        mono = sorted(set(t for k, t in entries.items() if parameters["mono_includes_heldout"] or k not in heldout))
        random.Random(f"{seed}:mono:{locale}").shuffle(mono)  # own order per locale: line i is no alignment hint
        write(f"mono/{locale}.txt", mono)
        info = {
            "script": likely_script(locale),
            "entries": len(entries),
            "by_category": dict(sorted(Counter(category(k) for k in entries).items())),
            "skipped": skipped_counts(locale),
            "mono_lines": len(mono),
        }
        if locale != pivot:
            train, leaks = _training_pairs(pivot, locale, heldout, random.Random(f"{seed}:parallel:{locale}"))
            evaluation, duplicates = _heldout_pairs(pivot, locale, heldout)
            write(f"parallel/cldr.{pivot}-{locale}.tsv", train)
            write(f"heldout/cldr.{pivot}-{locale}.tsv", evaluation)
            info.update(
                parallel_pairs=len(train),
                heldout_pairs=len(evaluation),
                leak_guard_dropped=leaks,
                heldout_duplicates_dropped=duplicates,
            )
        per_locale[locale] = info
    for l1, l2 in parameters["extra_pairs"]:
        if l1 in locales and l2 in locales and pivot not in (l1, l2):
            train, _ = _training_pairs(l1, l2, heldout, random.Random(f"{seed}:parallel:{l1}-{l2}"))
            write(f"parallel/cldr.{l1}-{l2}.tsv", train)

    counts = sorted(info["entries"] for info in per_locale.values())
    summary = {
        "generator": __name__,
        "signature": _signature(parameters),
        "parameters": parameters,
        "skip_rule": SKIP_RULE,
        "scripts": sorted({info["script"] for info in per_locale.values()}),
        "entries_per_locale": {"min": counts[0], "median": counts[len(counts) // 2], "max": counts[-1]},
        "skipped_total": dict(sorted(sum((Counter(i["skipped"]) for i in per_locale.values()), Counter()).items())),
        "heldout_keys": sorted(heldout),
        "heldout_by_category": dict(sorted(Counter(category(k) for k in heldout).items())),
        "locales": per_locale,
        "files": dict(sorted(files.items())),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_readme(summary), encoding="utf-8")
    return summary


def _signature(parameters: dict) -> str:
    return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:16]


def _readme(summary: dict) -> str:
    rows = "\n".join(
        f"| {locale} | {info['script']} | {info['entries']} | {info.get('parallel_pairs', '-')} | "
        f"{info.get('heldout_pairs', '-')} |"
        for locale, info in summary["locales"].items()
    )
    params = summary["parameters"]
    return (
        f"# CLDR demo corpus\n\nGenerated by `{summary['generator']}` from CLDR {params['cldr']} (babel "
        f"{params['babel']}), seed {params['seed']}, pivot `{params['pivot']}`. Train with `--mono_data mono "
        "--parallel_data parallel`; evaluate retrieval with `--retrieval_eval_data heldout`.\n\n"
        f"Held-out keys ({len(summary['heldout_keys'])}, the same for every locale): {summary['heldout_by_category']}."
        f"\n\nSkip rule: {summary['skip_rule']}\n\nSkipped in total: {summary['skipped_total']}.\n\n"
        "| locale | script | entries | parallel pairs | held-out pairs |\n|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def _existing_summary(out: Path, signature: str) -> dict | None:
    """The summary of a complete corpus in `out` made with the same parameters, else None."""
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if summary.get("signature") != signature:
        return None
    for relative, info in summary.get("files", {}).items():
        path = out / relative
        if not path.is_file() or path.stat().st_size != info["bytes"]:
            return None
    return summary


def _is_ours(out: Path) -> bool:
    try:
        return json.loads((out / "summary.json").read_text(encoding="utf-8")).get("generator") == __name__
    except (OSError, ValueError):
        return False


def write_demo_corpus(
    out_dir,
    locales=DEMO_LOCALES,
    pivot: str = ENGLISH,
    heldout_fraction: float = 0.1,
    seed: int = 0,
    extra_pairs=EXTRA_PAIRS,
    mono_includes_heldout: bool = True,
) -> dict:
    """Write the CLDR demo corpus to `out_dir` (layout in the module docstring) and return its summary.

    A corpus already there with the same parameters and babel/CLDR version is reused. Otherwise everything is
    written into a temporary folder beside `out_dir` and renamed into place (`write_files_atomically`), so a crash
    never leaves a half-written corpus; an older corpus of this generator is replaced, any other non-empty folder is
    an error. One process writes at a time (`run_pretrain.py` writes it on the main process first).
    """
    locales = list(dict.fromkeys(locales))
    if pivot not in locales:
        raise ValueError(f"the pivot {pivot!r} must be one of the locales")
    for locale in locales:
        _check_locale(locale)
    parameters = _parameters(locales, pivot, heldout_fraction, seed, extra_pairs, mono_includes_heldout)
    signature = _signature(parameters)
    out = Path(out_dir)
    if (summary := _existing_summary(out, signature)) is not None:
        return summary
    if out.exists() and any(out.iterdir()) and not _is_ours(out):
        raise FileExistsError(f"{out} exists and is not a CLDR demo corpus; pass an empty or new folder")

    out.parent.mkdir(parents=True, exist_ok=True)
    built = {}
    write_files_atomically({out: lambda staging: built.update(_build(Path(staging), parameters))})
    return built


# --------------------------------------------------------------------------------------------------------------------
# A tokenizer for runs from scratch

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int, max_alphabet: int = 4000) -> PreTrainedTokenizerFast:
    """
    Train a byte-pair tokenizer with XLM-R's special tokens and layout.

    Args:
        texts: training sentences (any scripts).
        vocab_size: pieces including the special tokens.
        max_alphabet: most frequent characters kept as base pieces; rarer ones become `<unk>` (Han and Hangul
            text alone has thousands of characters).
    """
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, limit_alphabet=max_alphabet, show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    wrapped = xlmr_style_tokenizer(tokenizer)
    wrapped.model_max_length = 512
    return wrapped


def xlmr_style_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a `tokenizers.Tokenizer` whose vocabulary starts with SPECIAL_TOKENS in XLM-R's special-token roles and
    pair layout `<s> A </s></s> B </s>`."""
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout_fraction", type=float, default=0.1)
    args = parser.parse_args()
    start = time.perf_counter()
    result = write_demo_corpus(args.out_dir, seed=args.seed, heldout_fraction=args.heldout_fraction)
    print(
        f"{len(result['locales'])} locales, {len(result['scripts'])} scripts, entries per locale "
        f"{result['entries_per_locale']}, {len(result['heldout_keys'])} held-out keys, "
        f"{time.perf_counter() - start:.1f} s -> {args.out_dir}"
    )
