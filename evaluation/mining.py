"""
Bitext mining: margin-based scoring of sentence pairs (Artetxe & Schwenk, 2019), as LASER and XTREME's BUCC use
it, the pairs it mines from two monolingual sets, and BUCC-style scoring of those pairs against gold pairs.

The ratio margin of a candidate pair (x, y) is its cosine similarity divided by the average similarity of each side
to its k nearest neighbours on the other side:

    margin(x, y) = cos(x, y) / ( Σ_{z ∈ NN_k(x)} cos(x, z) / 2k  +  Σ_{z ∈ NN_k(y)} cos(y, z) / 2k )

A sentence close to everything (a "hub") gets a large denominator, so its similarities count for less. As in LASER,
the candidates of a sentence are its k nearest neighbours by cosine, and its best match is the candidate with the
highest margin. Neighbours are found by exact search in blocks of `block_size` rows (no faiss: exact search over
tens of thousands of sentences is seconds, and it keeps the dependency list short).

BUCC's files: two monolingual `id<TAB>sentence` files and a gold `source_id<TAB>target_id` file (the BUCC
2017/2018 shared task's formats); mined pairs are scored with the `bitext_mining` evaluate module
(evaluation/metrics/).
"""

import os
from pathlib import Path

import torch
from torch.nn import functional as F

from trainer.data import DataError

from .metrics import load_metric

MARGIN_K = 4  # LASER's and XTREME's BUCC setting


def _nearest(queries: torch.Tensor, candidates: torch.Tensor, k: int, block_size: int):
    """Top-`k` cosine similarities and indices of each (unit-norm) query among the (unit-norm) candidates."""
    k = min(k, candidates.shape[0])
    similarities, indices = [], []
    for start in range(0, queries.shape[0], block_size):
        scores = queries[start : start + block_size] @ candidates.T
        top = scores.topk(k, dim=1)
        similarities.append(top.values)
        indices.append(top.indices)
    return torch.cat(similarities), torch.cat(indices)


def neighbourhood_averages(
    source: torch.Tensor, target: torch.Tensor, k: int = MARGIN_K, block_size: int = 4096
) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """
    Mean cosine similarity of every source vector to its `k` nearest targets and of every target to its `k` nearest
    sources (k is capped at the other side's size), with the neighbour lists: `(source_avg, target_avg,
    (source→target similarities, indices), (target→source similarities, indices))`.
    """
    source, target = F.normalize(source.float(), dim=-1), F.normalize(target.float(), dim=-1)
    forward = _nearest(source, target, k, block_size)
    backward = _nearest(target, source, k, block_size)
    return forward[0].mean(dim=1), backward[0].mean(dim=1), forward, backward


def margin_score_matrix(source: torch.Tensor, target: torch.Tensor, k: int = MARGIN_K) -> torch.Tensor:
    """The ratio margin of every (source, target) pair, `(n_source, n_target)`: for small sets and for tests."""
    source_avg, target_avg, _, _ = neighbourhood_averages(source, target, k)
    cosine = F.normalize(source.float(), dim=-1) @ F.normalize(target.float(), dim=-1).T
    return cosine / ((source_avg[:, None] + target_avg[None, :]) / 2)


def best_by_margin(
    source: torch.Tensor, target: torch.Tensor, k: int = MARGIN_K, block_size: int = 4096
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """
    Every sentence's best match on the other side: among its `k` nearest neighbours by cosine, the one with the
    highest ratio margin (LASER's candidate rule).

    Returns:
        ((target index, margin) per source sentence, (source index, margin) per target sentence).
    """
    source_avg, target_avg, (forward_cos, forward_idx), (backward_cos, backward_idx) = neighbourhood_averages(
        source, target, k, block_size
    )
    forward_margin = forward_cos / ((source_avg[:, None] + target_avg[forward_idx]) / 2)
    backward_margin = backward_cos / ((target_avg[:, None] + source_avg[backward_idx]) / 2)
    forward_best = forward_margin.argmax(dim=1, keepdim=True)
    backward_best = backward_margin.argmax(dim=1, keepdim=True)
    return (
        (forward_idx.gather(1, forward_best).squeeze(1), forward_margin.gather(1, forward_best).squeeze(1)),
        (backward_idx.gather(1, backward_best).squeeze(1), backward_margin.gather(1, backward_best).squeeze(1)),
    )


def mine_pairs(
    source: torch.Tensor, target: torch.Tensor, k: int = MARGIN_K, block_size: int = 4096
) -> list[tuple[int, int, float]]:
    """
    Candidate translation pairs of two monolingual sets, BUCC-style (LASER's `--retrieval max`, XTREME's BUCC
    mining): the best margin match of every source sentence and of every target sentence, the union without
    duplicates, sorted by margin (highest first). A threshold on the margin then decides which pairs are kept.

    Returns:
        `[(source index, target index, margin), ...]`.
    """
    (forward_idx, forward_margin), (backward_idx, backward_margin) = best_by_margin(source, target, k, block_size)
    pairs: dict[tuple[int, int], float] = {}
    for i, (j, score) in enumerate(zip(forward_idx.tolist(), forward_margin.tolist())):
        pairs[(i, j)] = score
    for j, (i, score) in enumerate(zip(backward_idx.tolist(), backward_margin.tolist())):
        pairs[(i, j)] = max(score, pairs.get((i, j), score))
    return sorted(((i, j, score) for (i, j), score in pairs.items()), key=lambda pair: (-pair[2], pair[0], pair[1]))


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
