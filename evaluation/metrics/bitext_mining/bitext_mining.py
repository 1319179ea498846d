"""Bitext mining precision, recall and F1 against gold pairs (BUCC), at the best margin threshold and at a given one.

An `evaluate` module: `evaluate.load("path/to/bitext_mining")` loads it offline; as the module of a Hub space made
with `evaluate-cli create`, `evaluate.load("<user>/<space>")` loads it from the Hub.
"""

import datasets
import evaluate

_DESCRIPTION = """
The BUCC shared task's scores of mined sentence pairs: every candidate pair a miner proposes has a score (the margin
of LASER / XTREME), and the pairs scoring at least a threshold are kept. Precision is the share of kept pairs that
are gold pairs, recall the share of gold pairs that were kept (gold pairs the miner never proposed count as missed),
F1 their harmonic mean. XTREME reports F1 at the threshold that maximises it on the gold pairs (the "optimised"
threshold, as BUCC's own evaluation of a tuned system), which this module finds by sweeping every candidate's score;
a threshold chosen beforehand (e.g. on a development set) gives the honest figure.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): the score of each candidate pair.
    references (`list` of `int`): 1 if that candidate pair is a gold pair, else 0 (each gold pair at most once).
    gold_pairs (`int`): the number of gold pairs, proposed or not (the recall's denominator).
    threshold (`float`, optional): also report the scores of the pairs scoring at least this.
Returns:
    best_threshold, precision, recall, f1, mined (pairs kept at the best threshold), and with `threshold`:
    threshold_precision, threshold_recall, threshold_f1, threshold_mined.
Examples:
    >>> metric = evaluate.load("evaluation/metrics/bitext_mining")
    >>> metric.compute(predictions=[1.3, 1.2, 1.05], references=[1, 1, 0], gold_pairs=3)["f1"]
    0.8
"""

_CITATION = """
@inproceedings{zweigenbaum2018overview,
  title={Overview of the Third {BUCC} Shared Task: Spotting Parallel Sentences in Comparable Corpora},
  author={Zweigenbaum, Pierre and Sharoff, Serge and Rapp, Reinhard},
  booktitle={Workshop on Building and Using Comparable Corpora}, year={2018}
}
"""


def _scores(kept: int, correct: int, gold_pairs: int) -> tuple[float, float, float]:
    precision = correct / kept if kept else 0.0
    recall = correct / gold_pairs if gold_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BitextMining(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int8")}
            ),
        )

    def _compute(self, predictions, references, gold_pairs: int, threshold: float | None = None):
        if sum(references) > gold_pairs:
            raise ValueError(f"{sum(references)} candidates are marked gold but gold_pairs is {gold_pairs}.")
        ranked = sorted(zip(predictions, references), key=lambda pair: -pair[0])
        best = {"best_threshold": None, "precision": 0.0, "recall": 0.0, "f1": 0.0, "mined": 0}
        correct = 0
        for kept, (score, gold) in enumerate(ranked, start=1):
            correct += gold
            # Only a cut between two different scores is a threshold (ties are kept or dropped together).
            if kept < len(ranked) and ranked[kept][0] == score:
                continue
            precision, recall, f1 = _scores(kept, correct, gold_pairs)
            if f1 > best["f1"]:
                best = {"best_threshold": score, "precision": precision, "recall": recall, "f1": f1, "mined": kept}
        if threshold is not None:
            kept_pairs = [gold for score, gold in ranked if score >= threshold]
            precision, recall, f1 = _scores(len(kept_pairs), sum(kept_pairs), gold_pairs)
            best.update(
                threshold=threshold,
                threshold_precision=precision,
                threshold_recall=recall,
                threshold_f1=f1,
                threshold_mined=len(kept_pairs),
            )
        return best
