"""
BUCC-style bitext mining: read two monolingual `id<TAB>sentence` files and a gold `source_id<TAB>target_id` file
(the BUCC 2017/2018 shared task's formats), mine candidate pairs by margin (trainer/margin.py) and score them
against the gold pairs with the `bitext_mining` evaluate module (trainer/metrics/).
"""

import os
from pathlib import Path

import torch

from .data import DataError
from .margin import MARGIN_K, mine_pairs
from .metrics import load_metric


def read_id_sentences(path: str | os.PathLike, option: str) -> tuple[list[str], list[str]]:
    """`(ids, sentences)` of an `id<TAB>sentence` file; a malformed line, blank field or repeated id raises DataError."""
    ids, sentences, seen = [], [], set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            identifier, tab, sentence = line.partition("\t")
            if not tab or not identifier.strip() or not sentence.strip():
                raise DataError(
                    f"{option} {path}, line {number}: expected `id<TAB>sentence` (BUCC's format), got {line[:80]!r}. "
                    "Fix the line or remove it."
                )
            if identifier in seen:
                raise DataError(
                    f"{option} {path}, line {number}: id {identifier!r} appears twice; ids must be unique."
                )
            seen.add(identifier)
            ids.append(identifier)
            sentences.append(sentence)
    if not ids:
        raise DataError(f"{option} {path}: no `id<TAB>sentence` line; pass a BUCC-style sentence file.")
    return ids, sentences


def read_gold_pairs(path: str | os.PathLike, source_ids: list[str], target_ids: list[str]) -> set[tuple[str, str]]:
    """The gold `source_id<TAB>target_id` pairs; a malformed line or an id missing from its file raises DataError."""
    sources, targets, gold = set(source_ids), set(target_ids), set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").rstrip("\r").split("\t")
            if len(fields) != 2:
                raise DataError(
                    f"--gold_file {path}, line {number}: expected `source_id<TAB>target_id`, got {line.strip()[:80]!r}."
                )
            source, target = fields
            for identifier, known, option in ((source, sources, "--source_file"), (target, targets, "--target_file")):
                if identifier not in known:
                    raise DataError(
                        f"--gold_file {path}, line {number}: id {identifier!r} is not in {option}. Pass the gold "
                        "file of these sentence files."
                    )
            gold.add((source, target))
    if not gold:
        raise DataError(f"--gold_file {path}: no gold pair; pass a BUCC-style gold file (source_id<TAB>target_id).")
    return gold


def mine_and_score(
    source_vectors: torch.Tensor,
    target_vectors: torch.Tensor,
    source_ids: list[str],
    target_ids: list[str],
    gold: set[tuple[str, str]],
    threshold: float | None = None,
    margin_k: int = MARGIN_K,
) -> tuple[list[dict], dict]:
    """
    Mines candidate pairs by margin and scores them against `gold`.

    Returns:
        (candidates: [{"source_id", "target_id", "margin", "gold"}, ...] by descending margin, scores of the
        `bitext_mining` module: best_threshold, precision, recall, f1, mined, and the same at `threshold`).
    """
    candidates = [
        {"source_id": source_ids[i], "target_id": target_ids[j], "margin": score}
        for i, j, score in mine_pairs(source_vectors, target_vectors, margin_k)
    ]
    for candidate in candidates:
        candidate["gold"] = (candidate["source_id"], candidate["target_id"]) in gold
    scores = load_metric("bitext_mining").compute(
        predictions=[candidate["margin"] for candidate in candidates],
        references=[int(candidate["gold"]) for candidate in candidates],
        gold_pairs=len(gold),
        threshold=threshold,
    )
    return candidates, scores


def write_candidates(path: str | os.PathLike, candidates: list[dict]) -> None:
    """`source_id<TAB>target_id<TAB>margin<TAB>gold` per line, highest margin first."""
    lines = [f"{c['source_id']}\t{c['target_id']}\t{c['margin']:.6f}\t{int(c['gold'])}\n" for c in candidates]
    Path(path).write_text("source_id\ttarget_id\tmargin\tgold\n" + "".join(lines), encoding="utf-8")
