"""
Evaluation of InfoXLM (and any XLM-R-style) checkpoints, as library code that the scripts `run_xnli.py`,
`run_retrieval.py` and `run_mining.py`, the training callback (trainer/retrieval_callback.py) and `experiments/` use.
One concept per module; import from the modules (`from evaluation.retrieval import encode`): they differ a lot in
what they import (datasets and peft for XNLI, matplotlib only when plotting).

- `xnli`: reading XNLI/MultiNLI data (local files, Hub datasets), its checks, classification metrics, the Trainer
  that averages metrics over languages.
- `xnli_report`: the XNLI results table, chart, prediction files and model card.
- `tatoeba`: the languages of a Tatoeba-style folder and their eval split.
- `retrieval`: sentence vectors (poolings of one layer), cosine and margin scoring, retrieval accuracy, loading any
  checkpoint for it.
- `mining`: ratio-margin scoring, BUCC-style bitext mining and its gold-pair files.
- `reports`: the retrieval and mining reports (JSON, Markdown, charts) and writing them atomically.
- `metrics/`: the metrics as `evaluate` modules (`evaluate.load("evaluation/metrics/<name>")`, offline).
"""
