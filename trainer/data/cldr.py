"""What the Unicode CLDR data that babel ships says in each locale, as language-independent keys and texts.

CLDR holds genuine human translations of the same things in hundreds of languages: names of territories,
languages, scripts, currencies and units, calendar words, and patterns that compose phrases (full dates, lists,
"3 days ago", "12 kilometres"). Every entry here has a language-independent key ("territory:FR",
"date:full:2024-03-05", "relative:-3:day", "unit:length-kilometer:12"), so the same key in two locales is a
translation pair (demo_corpus.py writes those pairs as a corpus).

Skip rule (see `SKIP_RULE`): CLDR falls back silently where a locale lacks data (to the key's code, to the
language-neutral root locale, or to English-identical text), and such entries are not translations.
"""

import datetime
import functools
import pickle
import re
from collections import Counter
from decimal import Decimal

from babel import Locale, dates, lists, localedata, numbers, units
from babel.core import get_global, parse_locale

ENGLISH = "en"  # the reference of the skip rule (every kept key has an English entry) and the default pivot

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
