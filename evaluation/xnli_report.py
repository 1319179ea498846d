"""
The files of an XNLI run (run_xnli.py) besides the model: the Markdown results table (also printed), the bar chart of
per-language accuracy, one predictions file per language and split, `xnli_results.json` and the model card, each
written atomically (`write_files_atomically`), so an interrupted run leaves no half-written file.
"""

import csv
import json
import logging
import os

import numpy as np
import torch
from babel import Locale, UnknownLocaleError
from datasets import Dataset
from huggingface_hub import HfApi, ModelCardData
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from trainer.output_folder import TRAINING_RUN_FILES, RunOutputs, write_files_atomically

logger = logging.getLogger(__name__)

RESULTS_FILE = "xnli_results.json"
CHART_FILE = "xnli_accuracy.png"
PREDICTIONS_DIR = "predictions"
ADAPTER_DIR = "lora_adapter"
# What a run writes to output_dir, i.e. what a previous run left there (trainer/output_folder.py).
XNLI_OUTPUTS = RunOutputs(
    files=(
        *TRAINING_RUN_FILES,
        RESULTS_FILE,
        CHART_FILE,
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
        "sentencepiece.bpe.model",
        "special_tokens_map.json",
    ),
    folders=(PREDICTIONS_DIR, ADAPTER_DIR, "runs"),
)


def language_name(code: str) -> str:
    """English name of a language code ("sw" -> "Swahili"); the code itself when babel does not know it."""
    try:
        return Locale.parse(code.replace("-", "_")).english_name or code
    except (ValueError, TypeError, UnknownLocaleError):
        return code


def results_table(results: dict[str, dict], averages: dict[str, dict], source_language: str) -> str:
    """Markdown table: one row per language with accuracy and macro-F1 (in %) and size per split, then averages."""
    splits = [split for split in ("test", "dev") if split in averages]
    header = ["Language"] + [f"{split.capitalize()} {name}" for split in splits for name in ("acc", "macro-F1", "n")]

    def cells(scores: dict[str, dict | None]) -> list[str]:
        row = []
        for split in splits:
            if scores.get(split):
                row += [f"{100 * scores[split]['accuracy']:.1f}", f"{100 * scores[split]['macro_f1']:.1f}"]
                row.append(str(scores[split].get("examples", "")))
            else:
                row += ["–"] * 3
        return row

    rows = []
    for language, scores in results.items():
        name = f"{language} ({language_name(language)})" + (" — train language" if language == source_language else "")
        rows.append([name] + cells(scores))
    rows.append(["**Average**"] + cells({split: averages[split].get("all") for split in splits}))
    if source_language in results and len(results) > 1:
        name = f"**Average without {source_language}** (zero-shot)"
        rows.append([name] + cells({split: averages[split].get("zero_shot") for split in splits}))
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_figure(
    results: dict[str, dict], averages: dict, source_language: str, num_labels: int, title: str
) -> Figure:
    """Bar chart of per-language test accuracy (dev when there is no test set), with the average and chance level."""
    split = "test" if "test" in averages else "dev"
    languages = [lang for lang, scores in results.items() if split in scores]
    accuracies = [100 * results[lang][split]["accuracy"] for lang in languages]
    figure = Figure(figsize=(max(4.0, 0.6 * len(languages) + 2), 4), layout="constrained")
    FigureCanvasAgg(figure)  # render with Agg: no display, no global pyplot state
    axes = figure.subplots()
    colors = ["tab:orange" if lang == source_language else "tab:blue" for lang in languages]
    bars = axes.bar(languages, accuracies, color=colors, zorder=2)
    average = 100 * averages[split]["all"]["accuracy"]
    lines = [
        axes.axhline(average, color="black", linestyle="--", linewidth=1, zorder=1, label=f"average {average:.1f}"),
        axes.axhline(100 / num_labels, color="gray", linestyle=":", linewidth=1, zorder=1, label="chance"),
    ]
    # On a white box above the lines: a bar that ends near the average line keeps a readable value.
    axes.bar_label(
        bars,
        fmt="%.1f",
        fontsize=8,
        zorder=3,
        bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"},
    )
    handles = []
    if source_language in languages:
        handles.append(Patch(color="tab:orange", label=f"{source_language} (training language)"))
    if any(lang != source_language for lang in languages):
        handles.append(Patch(color="tab:blue", label="zero-shot"))
    axes.set_ylim(0, 100)
    axes.set_ylabel(f"{split} accuracy (%)")
    axes.set_title(title, fontsize=10)
    axes.legend(handles=handles + lines, loc="lower right", fontsize=8)
    return figure


def write_predictions(path: str, raw: Dataset, logits: np.ndarray, label_list: list[str]):
    """One row per example: the text, gold and predicted label names, and the predicted probability of each label."""
    probabilities = torch.softmax(torch.from_numpy(logits).float(), dim=-1).numpy()
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "premise", "hypothesis", "label", "prediction"] + [f"p_{n}" for n in label_list])
        for i, (example, probs) in enumerate(zip(raw, probabilities)):
            row = [i, example["premise"], example["hypothesis"], label_list[example["label"]]]
            writer.writerow(row + [label_list[int(probs.argmax())]] + [f"{p:.4f}" for p in probs])


def write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_xnli_outputs(
    output_dir: str,
    report: dict,
    predictions: dict[tuple[str, str], np.ndarray],
    raw_sets: dict[str, dict[str, Dataset]],
    title: str,
) -> list[str]:
    """
    Writes `predictions/<lang>.<split>.tsv` for each `(split, language)` of `predictions` (logits of the examples of
    `raw_sets[split][language]`), the chart when the report has a table, and `xnli_results.json`; removes an earlier
    run's predictions and chart that this run does not replace. Returns the paths written.
    """
    label_list = report["settings"]["data"]["label_list"]
    predictions_dir = os.path.join(output_dir, PREDICTIONS_DIR)
    os.makedirs(predictions_dir, exist_ok=True)
    writers = {
        os.path.join(predictions_dir, f"{language}.{split}.tsv"): (
            lambda path, split=split, language=language, logits=logits: write_predictions(
                path, raw_sets[split][language], logits, label_list
            )
        )
        for (split, language), logits in predictions.items()
    }
    written = write_files_atomically(writers)
    # A rerun into the same folder must not leave an earlier run's predictions beside this run's.
    for name in sorted(set(os.listdir(predictions_dir)) - {os.path.basename(path) for path in written}):
        if name.endswith(".tsv"):
            os.remove(os.path.join(predictions_dir, name))
            logger.info(f"Removed {PREDICTIONS_DIR}/{name} of an earlier run.")
    chart = os.path.join(output_dir, CHART_FILE)
    files = {}
    if report["table"]:
        settings = report["settings"]
        figure = accuracy_figure(
            report["results"], report["averages"], settings["source_language"], len(label_list), title
        )
        files[chart] = lambda path: figure.savefig(path, format="png", dpi=120)
    elif os.path.exists(chart):
        os.remove(chart)  # an earlier run's chart would be taken for this one's
    files[os.path.join(output_dir, RESULTS_FILE)] = lambda path: write_text(
        path, json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    )
    return written + write_files_atomically(files)


def model_card(report: dict, model_type: str) -> str:
    """Model card (README.md) with the results table, the protocol and how to load the model."""
    settings, selection = report["settings"], report["selection"]
    data, lora = settings["data"], settings["lora"]
    model_name_or_path, train_language = settings["model_name_or_path"], settings["source_language"]
    card_data = ModelCardData(
        language=settings["languages"],
        tags=["xnli", "natural-language-inference", "cross-lingual"] + (["lora"] if lora else []),
        pipeline_tag="text-classification",
        metrics=["accuracy", "f1"],
        datasets=[data["dataset_name"]] if data["dataset_name"] else None,
        # Local paths mean nothing on the Hub.
        base_model=None if os.path.isdir(model_name_or_path) else model_name_or_path,
    )
    source = f"{language_name(train_language)} ({train_language})"
    protocol = f"Fine-tuned on {source} NLI data"
    if selection["enabled"] and data["select_on"] == "source_dev":
        protocol += f"; the checkpoint was selected on the {source} dev set only (zero-shot cross-lingual transfer)."
    elif selection["enabled"]:
        protocol += (
            "; the checkpoint was selected on the mean dev accuracy over all languages (translate-train style)."
        )
    else:
        protocol += "; no checkpoint selection (the model after the last training step)."
    if lora:
        protocol += (
            f" Trained with LoRA (r={lora['lora_r']}, alpha={lora['lora_alpha']}, on "
            f"{', '.join(lora['lora_target_modules'])} and the classifier); the weights here are merged, the "
            f"adapter is in `{ADAPTER_DIR}/`."
        )
    labels = ", ".join(f"{i} = {name}" for i, name in enumerate(data["label_list"]))
    # The code of model type `infoxlm` is saved next to the weights (auto_map), so the Hub can load it without us;
    # AutoTokenizer reads that config too, and would stop at a "run custom code?" prompt without the flag.
    remote_code = ", trust_remote_code=True" if model_type == "infoxlm" else ""
    return (
        f"---\n{card_data.to_yaml()}\n---\n\n"
        f"# XNLI classifier fine-tuned from `{model_name_or_path}`\n\n{protocol}\n\n"
        f"## Results\n\nAccuracy and macro-F1 in %.\n\n{report['table']}\n\n"
        f"Labels: {labels}. Every number and the run's settings are in `{RESULTS_FILE}`.\n\n"
        "## Usage\n\n```python\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("<this repo>"{remote_code})\n'
        f'model = AutoModelForSequenceClassification.from_pretrained("<this repo>"{remote_code})\n'
        'logits = model(**tokenizer("A premise.", "A hypothesis.", return_tensors="pt")).logits\n```\n'
    )


def push_output_folder(output_dir: str, repo_id: str, token: str | None, private: bool | None) -> None:
    """Pushes `output_dir` (model, results, model card; no checkpoints) to the Hub repo `repo_id` in one commit."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    api.upload_folder(
        repo_id=repo_id,
        folder_path=output_dir,
        commit_message="XNLI fine-tuning: model, results and model card",
        ignore_patterns=["checkpoint-*", "checkpoint-*/**", "runs/**", "*.tmp"],
    )
    logger.info(f"Pushed {output_dir} to https://huggingface.co/{repo_id}")
