"""Sentence retrieval accuracy (Tatoeba): the share of queries whose retrieved candidate is their translation.

An `evaluate` module: `evaluate.load("path/to/retrieval_accuracy")` loads it offline; as the module of a Hub space made
with `evaluate-cli create`, `evaluate.load("<user>/<space>")` loads it from the Hub.
"""

import datasets
import evaluate

_DESCRIPTION = """
Retrieval accuracy as XTREME and LASER report it on Tatoeba: every query sentence retrieves one candidate among the
other language's sentences (by cosine similarity or by margin), and the accuracy is the share of queries whose
retrieved candidate is the gold translation. It is an exact fraction `correct / total`, so a report shows 0.035
rather than 0.03500000014901161. Chance is 1 / candidates: languages with few pairs score high by chance alone.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): index of the candidate each query retrieved.
    references (`list` of `int`): index of each query's gold translation among the candidates.
Returns:
    accuracy (`float`): correct / total (0.0 for no queries).
    correct (`int`), total (`int`).
Examples:
    >>> metric = evaluate.load("evaluation/metrics/retrieval_accuracy")
    >>> metric.compute(predictions=[0, 2, 2], references=[0, 1, 2])
    {'accuracy': 0.6666666666666666, 'correct': 2, 'total': 3}
"""

_CITATION = """
@inproceedings{hu2020xtreme,
  title={{XTREME}: A Massively Multilingual Multi-task Benchmark for Evaluating Cross-lingual Generalisation},
  author={Hu, Junjie and Ruder, Sebastian and Siddhant, Aditya and Neubig, Graham and Firat, Orhan and Johnson, Melvin},
  booktitle={ICML}, year={2020}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RetrievalAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        correct = sum(int(p == r) for p, r in zip(predictions, references))
        total = len(references)
        return {"accuracy": correct / total if total else 0.0, "correct": correct, "total": total}
