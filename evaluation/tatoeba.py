"""
Tatoeba-style evaluation data: the languages of a folder of <xx>-English parallel files, found from the file names,
and the eval split of each (pair `i` with `i % heldout_every == 0`, the pairs `run_pretrain.py
--parallel_heldout_every` keeps out of training), checked before any model work.
"""

import logging
import os
from pathlib import Path

from infoxlm_cli import ConfigError
from trainer.data import DataError, find_parallel_corpora, load_parallel_pairs

logger = logging.getLogger(__name__)

ENGLISH = ("eng", "en")


def find_tatoeba_languages(directory: str | os.PathLike, heldout_every: int = 5) -> dict[str, list[Path]]:
    """
    The languages of a folder of `<xx>`–English parallel files (Tatoeba's `tatoeba.<xx>-eng.<xx>` +
    `tatoeba.<xx>-eng.eng`, or any `--parallel_data` format), from the file names only: {language: files}.

    Raises `DataError` for a file that follows no parallel naming or pairs two non-English languages.
    """
    languages: dict[str, list[Path]] = {}
    for corpus in find_parallel_corpora([str(directory)], heldout_every):
        source, target = corpus.src_lang, corpus.tgt_lang
        if (source in ENGLISH) == (target in ENGLISH):
            raise DataError(
                f"{corpus.name}: the language pair {corpus.pair} is not <language>-English; keep only pairs with "
                "English (e.g. tatoeba.fra-eng.fra + tatoeba.fra-eng.eng) in the folder."
            )
        language = target if source in ENGLISH else source
        # Naming one side of a Moses pair is enough for load_parallel_pairs.
        languages.setdefault(language, []).append(getattr(corpus, "src_path", None) or corpus.path)
    return languages


def load_tatoeba_eval(files: dict[str, list[Path]], heldout_every: int = 5) -> dict[str, tuple[list[str], list[str]]]:
    """
    The eval split (pair `i` with `i % heldout_every == 0`; every pair with `heldout_every=1`, XTREME's full test
    set) of each language: {language: (xx sentences, English sentences)}, aligned. Raises `DataError` for misaligned files and for a language left without an eval pair.
    """
    pairs = {}
    for language, paths in files.items():
        foreign, english = [], []
        for pair, (sources, targets) in load_parallel_pairs(
            [str(path) for path in paths], split="all" if heldout_every == 1 else "eval", heldout_every=heldout_every
        ).items():
            if pair.split("-")[0] in ENGLISH:
                sources, targets = targets, sources
            foreign += sources
            english += targets
        if not foreign:
            raise DataError(
                f"{', '.join(map(str, paths))}: no eval pair for {language} (pair i with i % {heldout_every} == 0 "
                "and both sides non-blank); fill the files or leave the language out."
            )
        pairs[language] = (foreign, english)
    return pairs


def _language_list(languages) -> str:
    languages = sorted(languages)
    return ", ".join(languages[:30]) + (f", ... ({len(languages)} in all)" if len(languages) > 30 else "")


def load_tatoeba_languages(
    tatoeba_dir: str, languages: list[str] | None, mono_only_languages: list[str], heldout_every: int = 5
) -> dict[str, tuple[list[str], list[str]]]:
    """
    The eval split of `languages` (None: every language of the folder) of `tatoeba_dir`: a missing folder, a
    requested language without files (`languages` or `mono_only_languages`) and bad files raise ConfigError or
    DataError before any model work.
    """
    if not os.path.isdir(tatoeba_dir):
        raise ConfigError(
            f"--tatoeba_dir {tatoeba_dir}: no such folder ({os.path.abspath(tatoeba_dir)}). Pass the folder of "
            "tatoeba.<xx>-eng.<xx> + tatoeba.<xx>-eng.eng files, e.g. ../shared/data/tatoeba."
        )
    files = find_tatoeba_languages(tatoeba_dir, heldout_every)
    for option, requested in (("--languages", languages or []), ("--mono_only_languages", mono_only_languages)):
        missing = [language for language in requested if language not in files]
        if missing:
            raise ConfigError(
                f"{option}: no files for {', '.join(missing)} in {tatoeba_dir}. Add tatoeba.<xx>-eng.<xx> + "
                f"tatoeba.<xx>-eng.eng there or leave it out; the folder has: {_language_list(files)}."
            )
    selected = languages or sorted(files)
    pairs = load_tatoeba_eval({language: files[language] for language in selected}, heldout_every)
    skipped = [language for language in mono_only_languages if language not in pairs]
    if skipped:
        logger.info(f"--mono_only_languages {', '.join(skipped)}: not in --languages, not evaluated")
    return pairs
