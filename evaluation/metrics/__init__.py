"""
The metrics of our scripts as `evaluate` modules, one folder each (`<name>/<name>.py`): `nli_classification`
(run_xnli.py), `retrieval_accuracy` (run_retrieval.py and the training callback) and `bitext_mining`
(run_mining.py). `evaluate.load(<folder>)` loads them from disk without the network, and each folder can be pushed
to the Hub as it is. `evaluate` is imported on first use only, so `import evaluation` stays fast.
"""

import functools
from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("nli_classification", "retrieval_accuracy", "bitext_mining")


@functools.cache
def load_metric(name: str):
    """The `evaluate` module `name` of this folder (loaded once per process)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; expected one of {METRIC_NAMES}")
    import evaluate

    return evaluate.load(str(METRICS_DIR / name))


def accuracy(predictions: list[int], references: list[int]) -> float:
    """Share of `predictions` equal to `references`, an exact fraction (the `retrieval_accuracy` module)."""
    return load_metric("retrieval_accuracy").compute(predictions=predictions, references=references)["accuracy"]
