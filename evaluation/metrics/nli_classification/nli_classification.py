"""Classification scores of XNLI (or any single-label task): accuracy, macro-F1, per-class scores, confusion matrix.

An `evaluate` module: `evaluate.load("path/to/nli_classification")` loads it offline; as the module of a Hub space made
with `evaluate-cli create`, `evaluate.load("<user>/<space>")` loads it from the Hub.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Accuracy (what XNLI papers report), macro-F1, per-class precision / recall / F1 / support and the confusion matrix
(rows: gold, columns: predicted) of a single-label classifier. Macro-F1 averages over the classes that occur in the
gold labels or the predictions (as scikit-learn does).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted label ids.
    references (`list` of `int`): gold label ids.
    label_names (`list` of `str`): the name of every label id, in id order.
Returns:
    accuracy, macro_f1, examples, per_class ({name: {precision, recall, f1, support}}), confusion_matrix.
Examples:
    >>> metric = evaluate.load("evaluation/metrics/nli_classification")
    >>> metric.compute(predictions=[0, 1, 2, 1], references=[0, 1, 1, 1],
    ...                label_names=["entailment", "neutral", "contradiction"])["accuracy"]
    0.75
"""

_CITATION = """
@inproceedings{conneau2018xnli,
  title={{XNLI}: Evaluating Cross-lingual Sentence Representations},
  author={Conneau, Alexis and Rinott, Ruty and Lample, Guillaume and Williams, Adina and Bowman, Samuel R. and
          Schwenk, Holger and Stoyanov, Veselin},
  booktitle={EMNLP}, year={2018}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NliClassification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, label_names: list[str]):
        num_labels = len(label_names)
        predictions, labels = np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64)
        confusion = np.zeros((num_labels, num_labels), dtype=np.int64)
        np.add.at(confusion, (labels, predictions), 1)
        correct = np.diag(confusion).astype(np.float64)
        predicted, gold = confusion.sum(axis=0), confusion.sum(axis=1)
        precision = np.divide(correct, predicted, out=np.zeros(num_labels), where=predicted > 0)
        recall = np.divide(correct, gold, out=np.zeros(num_labels), where=gold > 0)
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros(num_labels), where=precision + recall > 0
        )
        present = (predicted + gold) > 0
        return {
            "accuracy": float(correct.sum() / max(len(labels), 1)),
            "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "examples": int(len(labels)),
            "per_class": {
                name: {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(gold[i]),
                }
                for i, name in enumerate(label_names)
            },
            "confusion_matrix": confusion.tolist(),
        }
