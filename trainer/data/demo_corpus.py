"""A small multilingual demo corpus built from the Unicode CLDR data that babel ships.

CLDR holds genuine human translations of the same things in hundreds of languages: names of territories,
languages, scripts, currencies and units, calendar words, and patterns that compose phrases (full dates, lists,
"3 days ago", "12 kilometres"). Every entry here has a language-independent key ("territory:FR",
"date:full:2024-03-05", "relative:-3:day", "unit:length-kilometer:12"), so the same key in two locales is a
translation pair. That makes an offline, licence-clean corpus for trying the whole pipeline (MLM, TLM, XLCO and
retrieval evaluation) on ~40 languages in ~20 scripts without downloading anything.

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

Skip rule (see `SKIP_RULE`): CLDR falls back silently where a locale lacks data (to the key's code, to the
language-neutral root locale, or to English-identical text), and such entries are not translations.
"""

import datetime
import functools
import hashlib
import json
import os
import pickle
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import babel
from babel import Locale, dates, lists, localedata, numbers, units
from babel.core import get_cldr_version, get_global, parse_locale

from .sources import _PAIR_CODE

FORMAT_VERSION = 1
ENGLISH = "en"  # the reference of the skip rule (every kept key has an English entry) and the default pivot

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

NAME_CATEGORIES = ("territory", "language", "script", "currency", "unit-name")
# Composed phrases: the only categories held out for retrieval (names are single words, too easy and too few).
PHRASE_CATEGORIES = ("date", "list", "relative", "unit", "money", "compact")

SKIP_RULE = (
    "An entry is skipped when (error) babel raises for it, (empty) it is empty, (code) its text is its key's code "
    "(case-insensitive, e.g. 'FR' for territory:FR; kept when CLDR's English name is that word too, e.g. script "
    "'Thai') or contains a unit or currency code as a word (babel's fallback for a missing unit or currency name), "
    "(no_english) English has no entry for the key, so the next two checks are impossible, (root) a non-English "
    "text equals the language-neutral CLDR root value, e.g. month 'M03' or relative time '+3 d' (inherited "
    "placeholder), or a date uses a root month name, (english) a non-English text is identical to the English "
    "one. The last check is stricter than needed for cognates ('Canada' in French), on purpose: an identical "
    "string is either an untranslated fallback or a pair that teaches only copying, and identical candidates "
    "make retrieval trivial."
)

# Fixed inputs of the composed phrases: part of the keys, so they must never depend on the seed.
_UNITS = (
    "length-kilometer", "length-meter", "length-centimeter", "length-millimeter", "length-mile", "length-foot",
    "length-inch", "mass-kilogram", "mass-gram", "mass-pound", "mass-tonne", "volume-liter", "volume-milliliter",
    "volume-cup", "volume-gallon", "duration-year", "duration-month", "duration-week", "duration-day",
    "duration-hour", "duration-minute", "duration-second", "temperature-celsius", "temperature-fahrenheit",
    "speed-kilometer-per-hour", "speed-mile-per-hour", "area-hectare", "area-square-meter", "area-square-kilometer",
    "digital-gigabyte", "digital-megabyte", "energy-kilocalorie", "power-kilowatt", "electric-volt",
    "frequency-megahertz", "pressure-bar",
)  # fmt: skip
_UNIT_VALUES = (1, 2, 5, 12, 21)  # different plural forms in most languages (one, two/few, many, other)
_DATES = tuple(
    datetime.date(year, month, (7 * month + year) % 28 + 1) for year in (2023, 2024) for month in range(1, 13)
)
_LIST_TERRITORIES = (
    "FR", "DE", "IT", "ES", "JP", "CN", "IN", "BR", "EG", "KE", "RU", "US", "MX",
    "CA", "AU", "NG", "TR", "KR", "GR", "IL", "TH", "GE", "AM", "ET", "VN",
)  # fmt: skip
_RELATIVE_UNITS = ("minute", "hour", "day", "week", "month", "year")
_RELATIVE_VALUES = (1, 2, 3, 5, 10)
_MONEY_CURRENCIES = ("EUR", "USD", "JPY", "GBP", "CNY", "INR", "RUB", "KES", "BRL", "CHF")
_MONEY_AMOUNTS = (Decimal("1"), Decimal("2"), Decimal("12.50"), Decimal("1000"))
_COMPACT_VALUES = (12_000, 250_000, 3_000_000, 45_000_000, 2_000_000_000, 7_000_000_000_000)
_DAY_PERIODS = ("am", "pm", "midnight", "noon")  # morning1 etc. cover different hours in each locale: no pairs
_SECONDS_PER_UNIT = dict(dates.TIMEDELTA_UNITS)

# What babel raises for data a locale lacks (KeyError mostly, UnknownUnitError is a ValueError). Not TypeError: that
# is a wrong call here, which must fail loudly instead of quietly skipping a whole category.
_BABEL_ERRORS = (LookupError, ValueError, numbers.UnknownCurrencyError)


# --------------------------------------------------------------------------------------------------------------------
# Locale data


def likely_script(locale: str) -> str:
    """ISO 15924 script of a locale: its script subtag, else CLDR's likely subtags ('ru' -> 'Cyrl', 'ja' -> 'Jpan')."""
    language, _, script, *_ = parse_locale(locale)
    return script or parse_locale(get_global("likely_subtags")[language])[2]


LOCALE_SCRIPTS: dict[str, str] = {locale: likely_script(locale) for locale in DEMO_LOCALES}


def _parent_locale(name: str) -> str:
    """CLDR parent of a locale, as babel.localedata.load computes it (explicit exceptions, non-likely scripts)."""
    parent = get_global("parent_exceptions").get(name)
    if parent:
        return parent
    parts = name.split("_")
    if len(parts) == 2 and len(parts[1]) == 4 and likely_script(parts[0]) != parts[1]:
        return "root"  # zh_Hant, sr_Latn: a non-likely script does not inherit from the bare language
    return "root" if len(parts) == 1 else "_".join(parts[:-1])


@functools.cache
def _fresh_locale(name: str) -> Locale:
    """A Locale whose data is private to it.

    babel 2.18 resolves aliases in place in data shared by all locales (after `Locale('fr').quarters['stand-alone']`
    Russian stand-alone quarters are French; python-babel/babel#1234), so results would depend on which locales ran
    first in the process.
    Loading the pickles afresh and merging the inheritance chain ourselves gives every locale its own copy.
    """
    chain = [name]
    while chain[-1] != "root":
        chain.append(_parent_locale(chain[-1]))
    data: dict = {}
    for link in reversed(chain):
        with open(localedata.resolve_locale_filename(link), "rb") as f:
            localedata.merge(data, pickle.load(f))
    locale = Locale("root") if name == "root" else Locale.parse(name)  # a new instance on every call
    locale._Locale__data = localedata.LocaleDataDict(data)  # babel has no public hook for this
    return locale


# --------------------------------------------------------------------------------------------------------------------
# Entries of one locale


def _clean(text) -> str:
    """One line of text: CLDR uses (narrow) no-break spaces in numbers; any whitespace becomes one space."""
    return " ".join(text.split()) if isinstance(text, str) else ""


def _contains_code(text: str, code: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text) is not None


def category(key: str) -> str:
    return key.split(":", 1)[0]


def _code(key: str) -> str:
    return key.split(":")[1]


class _Collector:
    """Entries of one locale, with the reason each skipped one was skipped."""

    def __init__(self):
        self.texts: dict[str, str] = {}
        self.skipped: Counter = Counter()

    def add(self, key: str, make, code_word: str | None = None):
        try:
            text = _clean(make())
        except _BABEL_ERRORS:
            self.skipped["error"] += 1
            return
        if not text:
            self.skipped["empty"] += 1
        elif code_word is not None and _contains_code(text, code_word):
            self.skipped["code"] += 1
        else:
            self.texts[key] = text


@functools.cache
def _collect(name: str) -> _Collector:
    """Every entry CLDR gives for a locale, before the checks against English and root."""
    loc = _fresh_locale(name)
    out = _Collector()
    for cat, names in (
        ("territory", loc.territories),
        ("language", loc.languages),
        ("script", loc.scripts),
        ("currency", loc.currencies),
    ):
        for code in sorted(names):
            out.add(f"{cat}:{code}", lambda names=names, code=code: names[code])
    for unit in _UNITS:
        out.add(f"unit-name:{unit}", lambda u=unit: _unit_name(u, loc), unit)

    for context in ("format", "stand-alone"):
        for width in ("wide", "abbreviated"):
            for day in range(7):  # 0 = Monday
                out.add(f"weekday:{context}:{width}:{day}", lambda c=context, w=width, d=day: loc.days[c][w][d])
            for month in range(1, 13):
                out.add(f"month:{context}:{width}:{month}", lambda c=context, w=width, m=month: loc.months[c][w][m])
        for quarter in range(1, 5):
            out.add(f"quarter:{context}:wide:{quarter}", lambda c=context, q=quarter: loc.quarters[c]["wide"][q])
        for period in _DAY_PERIODS:
            out.add(f"dayperiod:{context}:wide:{period}", lambda c=context, p=period: _day_period(loc, c, p))
    for era in (0, 1):
        out.add(f"era:wide:{era}", lambda e=era: loc.eras["wide"][e])

    root_months = _fresh_locale("root").months["format"]["wide"]
    for day in _DATES:
        for width in ("full", "long"):
            key = f"date:{width}:{day.isoformat()}"
            if name != "root" and loc.months["format"]["wide"].get(day.month) == root_months[day.month]:
                out.skipped["root"] += 1  # the date would show a placeholder month name ("M03")
            else:
                out.add(key, lambda d=day, w=width: dates.format_date(d, w, locale=loc))

    for style, tag in (("standard", "and"), ("or", "or")):
        for codes in _list_combinations():
            key = f"list:{tag}:{','.join(codes)}"
            out.add(key, lambda c=codes, s=style: lists.format_list([loc.territories[x] for x in c], s, locale=loc))

    for unit in _RELATIVE_UNITS:
        for value in _RELATIVE_VALUES:
            if _relative_unit(value, unit) != unit:
                continue  # babel would say "1 week" for 10 days: the key would lie
            for sign in (-1, 1):
                delta = datetime.timedelta(seconds=sign * value * _SECONDS_PER_UNIT[unit])
                out.add(
                    f"relative:{sign * value:+d}:{unit}",
                    lambda d=delta: dates.format_timedelta(d, threshold=1, add_direction=True, locale=loc),
                )

    for unit in _UNITS:
        for value in _UNIT_VALUES:
            out.add(f"unit:{unit}:{value}", lambda u=unit, v=value: _unit_phrase(v, u, loc), unit)
    for currency in _MONEY_CURRENCIES:
        for amount in _MONEY_AMOUNTS:
            out.add(
                f"money:{currency}:{amount}",
                lambda c=currency, a=amount: numbers.format_currency(a, c, format_type="name", locale=loc),
                currency,
            )
    for value in _COMPACT_VALUES:
        out.add(f"compact:{value}", lambda v=value: numbers.format_compact_decimal(v, format_type="long", locale=loc))
    return out


# CLDR's root makes the long unit forms an alias of the short ones where a locale has no long form (zh_Hant,
# "12 公里"); babel's unit functions do not follow that alias and fall back to the unit code ("12 length-kilometer").
def _unit_name(unit: str, loc: Locale) -> str | None:
    return units.get_unit_name(unit, length="long", locale=loc) or units.get_unit_name(unit, "short", locale=loc)


def _unit_phrase(value: int, unit: str, loc: Locale) -> str:
    text = units.format_unit(value, unit, "long", locale=loc)
    return units.format_unit(value, unit, "short", locale=loc) if _contains_code(text, unit) else text


def _day_period(loc: Locale, context: str, period: str) -> str:
    """CLDR looks a missing day period up in the next width and context (root's aliases); babel's data does not
    (Japanese has its am/pm only in format/abbreviated)."""
    chain = [("format", "wide"), ("format", "abbreviated")]
    if context == "stand-alone":
        chain = [("stand-alone", "wide"), ("stand-alone", "abbreviated"), ("format", "abbreviated")]
    for context_, width in chain:
        if period in loc.day_periods[context_][width]:
            return loc.day_periods[context_][width][period]
    raise KeyError(period)


def _list_combinations() -> list[tuple[str, ...]]:
    """25 pairs and 25 triples of territories, each territory in several lists, in a fixed order."""
    pool, n = _LIST_TERRITORIES, len(_LIST_TERRITORIES)
    return [(pool[i], pool[(i + 1) % n]) for i in range(n)] + [
        (pool[i], pool[(i + 3) % n], pool[(i + 7) % n]) for i in range(n)
    ]


def _relative_unit(value: int, unit: str) -> str:
    """The unit babel's format_timedelta (threshold 1) picks for `value` `unit`s: the largest that fits once."""
    seconds = value * _SECONDS_PER_UNIT[unit]
    return next(name for name, per_unit in dates.TIMEDELTA_UNITS if seconds / per_unit >= 1)


@functools.cache
def _checked_entries(locale: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, int], ...]]:
    """(sorted (key, text) pairs, sorted (reason, count) skips) of a locale after all checks of SKIP_RULE."""
    collected = _collect(locale)
    english = _collect(ENGLISH).texts
    root = _collect("root").texts
    skipped = Counter(collected.skipped)
    kept = {}
    for key, text in collected.texts.items():
        reason = None
        if key not in english:
            reason = "no_english"
        elif category(key) in NAME_CATEGORIES and text.casefold() == _code(key).casefold():
            if english[key].casefold() != _code(key).casefold():
                reason = "code"
        if reason is None and locale != ENGLISH:
            if text == root.get(key):
                reason = "root"
            elif text == english[key]:
                reason = "english"
        if reason is None:
            kept[key] = text
        else:
            skipped[reason] += 1
    return tuple(sorted(kept.items())), tuple(sorted(skipped.items()))


def cldr_entries(locale: str) -> dict[str, str]:
    """Key -> text of every CLDR entry of `locale` that passes SKIP_RULE, sorted by key."""
    return dict(_checked_entries(locale)[0])


def skipped_counts(locale: str) -> dict[str, int]:
    """How many entries of `locale` SKIP_RULE dropped, per reason."""
    return dict(_checked_entries(locale)[1])


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
    if not re.fullmatch(_PAIR_CODE, locale):
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
    written into a temporary folder beside `out_dir` and renamed into place, so a crash never leaves a half-written
    corpus; an older corpus of this generator is replaced, any other non-empty folder is an error.
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
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        summary = _build(staging, parameters)
        old = None
        if out.exists():
            old = staging.with_name(staging.name + ".old")
            os.rename(out, old)
        try:
            os.rename(staging, out)
        except OSError:
            if old is not None and not out.exists():
                os.rename(old, out)  # put the previous corpus back
                old = None
            # Another process finished the same corpus first (e.g. several ranks of one run): use theirs.
            if (theirs := _existing_summary(out, signature)) is not None:
                return theirs
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # nothing left once renamed
    return summary


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
