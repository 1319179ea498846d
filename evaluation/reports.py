"""
The reports of the retrieval and mining scripts: what `retrieval.json` holds (per-language results, group averages
with the languages too small to measure left out), the same as Markdown and as a bar chart, the Markdown of
`mining.json`, and writing each report's files atomically (`write_files_atomically`) into a folder checked
beforehand (`check_report_folder`).
"""

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.output_folder import RunOutputs, check_output_folder, write_files_atomically

from .mining import MARGIN_K, write_candidates
from .retrieval import DIRECTIONS, POOLINGS, SCORINGS, method_name

if TYPE_CHECKING:  # matplotlib is imported only when plotting: importing `evaluation` stays fast
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# A language with fewer eval pairs than this is reported but left out of the group averages: with n candidates
# chance is 1/n, so a language of 1 pair scores 100% whatever the model and would lift its group's average.
MIN_PAIRS = 10
GROUPS = ("bitext", "mono_only")
RETRIEVAL_FILES = ("retrieval.md", "retrieval.json", "retrieval.png")
MINING_FILES = ("mining.md", "mining.json", "candidates.tsv")


def check_report_folder(
    output_dir: str, reads: dict[str, str | None], overwrite: bool, own_files: tuple[str, ...] = RETRIEVAL_FILES
) -> None:
    """The rule of every script (trainer/output_folder.py), stricter on other files: a folder holding anything (a
    previous evaluation, other files) is refused unless `overwrite` (--overwrite_output_dir), which writes the
    results beside the other files; never the folder of the model or tokenizer read (`reads`: option -> path).
    `own_files`: the script's results."""
    check_output_folder(
        output_dir,
        reads=reads,
        overwrite=overwrite,
        outputs=RunOutputs(files=own_files, checkpoints=False, others_count=True),
    )


def write_json(path: str, content: dict) -> None:
    Path(path).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def retrieval_report(
    results: dict[str, dict], mono_only_languages: Sequence[str], min_pairs: int = MIN_PAIRS, **settings
) -> dict:
    """
    The content of `retrieval.json`: `settings` (model, layer, ...), per-language results with their group
    ("bitext": every language not in `mono_only_languages`; "mono_only": those), and per-group macro averages
    (None for an empty group). Languages with fewer than `min_pairs` pairs are marked `too_small` and left out of
    the averages (listed in the group's `excluded`), with a warning.
    """
    methods = [name for name in _method_order(results)]
    directions = [key for key in DIRECTIONS if any(key in scores[methods[0]] for scores in results.values())]
    mono_only = set(mono_only_languages)
    languages = {
        language: {
            "group": "mono_only" if language in mono_only else "bitext",
            "too_small": results[language]["pairs"] < min_pairs,
            **results[language],
        }
        for language in sorted(results)
    }
    small = [f"{language} ({scores['pairs']})" for language, scores in languages.items() if scores["too_small"]]
    if small:
        logger.warning(
            f"{len(small)} language(s) with fewer than {min_pairs} eval pairs are reported but left out of the "
            f"averages (chance is 1/pairs, so they score high by chance alone): {', '.join(small)}"
        )
    groups = {}
    for group in GROUPS:
        in_group = [language for language, scores in languages.items() if scores["group"] == group]
        members = [language for language in in_group if not languages[language]["too_small"]]
        groups[group] = {
            "languages": members,
            "excluded": [language for language in in_group if languages[language]["too_small"]],
            "pairs": sum(languages[language]["pairs"] for language in members),
        }
        for method in methods:
            groups[group][method] = {
                key: sum(languages[language][method][key] for language in members) / len(members) if members else None
                for key in (*directions, "mean")
            }
    return {
        **settings,
        "mono_only_languages": list(mono_only_languages),
        "min_pairs": min_pairs,
        "methods": methods,
        "poolings": [pooling for pooling in POOLINGS if any(_split_method(m)[0] == pooling for m in methods)],
        "scorings": [scoring for scoring in SCORINGS if any(_split_method(m)[1] == scoring for m in methods)],
        "directions": directions,
        "languages": languages,
        "groups": groups,
    }


def _split_method(method: str) -> tuple[str, str]:
    pooling, _, scoring = method.partition("/")
    return pooling, scoring or "cosine"


def _method_order(results: dict[str, dict]) -> list[str]:
    present = {key for scores in results.values() for key in scores if key not in ("pairs", "group", "too_small")}
    return [method_name(p, s) for s in SCORINGS for p in POOLINGS if method_name(p, s) in present]


def method_title(method: str) -> str:
    pooling, scoring = _split_method(method)
    return POOLING_TITLES[pooling] + ("" if scoring == "cosine" else f" ({scoring})")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


GROUP_TITLES = {"bitext": "bitext in training", "mono_only": "monolingual only"}
POOLING_TITLES = {"xlco": "xlco", "mean": "mean-pooled"}


DIRECTION_TITLES = {"xx->en": "xx→en", "en->xx": "en→xx", "mean": "avg"}


def _report_keys(report: dict) -> list[str]:
    """The score columns of each method: the directions, and their average when there are two."""
    directions = report.get("directions", list(DIRECTIONS))
    return [*directions, "mean"] if len(directions) > 1 else directions


def describe_settings(report: dict) -> list[str]:
    """What every number of the report is: split, candidates, directions, layer, pooling, scoring, exclusions."""
    every = report.get("heldout_every", 5)
    split = (
        "every pair (on Tatoeba: XTREME's full test set)"
        if every == 1
        else f"the eval split (pair i with i % {every} == 0)"
    )
    directions = report.get("directions", list(DIRECTIONS))
    queries = " and ".join(
        {"xx->en": "xx sentences query the English ones (xx→en, XTREME's direction)", "en->xx": "English sentences "
         "query the xx ones (en→xx)"}[direction] for direction in directions
    )  # fmt: skip
    scorings = {
        "cosine": "cosine: the candidate of highest cosine similarity",
        "margin": f"margin: among the {report.get('margin_k', MARGIN_K)} nearest candidates by cosine, the one of "
        "highest ratio margin (cosine over the mean similarity of both sides to their k nearest neighbours; "
        "LASER, XTREME's BUCC)",
    }
    lines = [
        f"- Data: {report.get('tatoeba_dir', 'Tatoeba')}, {split}. Candidates per query: all the other side's "
        "sentences of the same language (the `pairs` column), so chance is 100 / pairs.",
        f"- Queries: {queries}." + (" `avg` is the mean of both directions." if len(directions) > 1 else ""),
        f"- Layer: {report.get('layer')} of {report.get('num_hidden_layers', '?')}.",
    ]
    lines += [
        f"- Pooling `{pooling}`: {report['pooling_descriptions'][pooling]}" for pooling in report.get("poolings", [])
    ]
    lines += [f"- Scoring {scorings[scoring]}" for scoring in report.get("scorings", ["cosine"])]
    excluded = [language for averages in report["groups"].values() for language in averages.get("excluded", [])]
    if excluded:
        lines.append(
            f"- Not averaged (fewer than {report.get('min_pairs', MIN_PAIRS)} pairs, too small to measure): "
            + ", ".join(f"{language} ({report['languages'][language]['pairs']})" for language in excluded)
        )
    return lines


def format_retrieval_markdown(report: dict) -> str:
    """The settings, the group averages and the per-language table of a `retrieval_report`, in %, as Markdown."""
    methods, keys = report.get("methods", report["poolings"]), _report_keys(report)
    columns = [f"{method_title(method)}: {DIRECTION_TITLES[key]}" for method in methods for key in keys]
    lines = [f"# Tatoeba retrieval: {report.get('model_name_or_path', 'model')}", "", "Accuracy in %.", ""]
    lines += describe_settings(report)
    lines += ["", "| group | languages | pairs | " + " | ".join(columns) + " |"]
    lines.append("|---|---:|---:" + "|---:" * len(columns) + "|")
    for group, averages in report["groups"].items():
        cells = [_percent(averages[method][key]) for method in methods for key in keys]
        row = [GROUP_TITLES[group], str(len(averages["languages"])), str(averages["pairs"]), *cells]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| language | group | pairs | " + " | ".join(columns) + " |"]
    lines.append("|---|---|---:" + "|---:" * len(columns) + "|")
    ordered = sorted(report["languages"].items(), key=lambda item: (GROUPS.index(item[1]["group"]), item[0]))
    for language, scores in ordered:
        cells = [_percent(scores[method][key]) for method in methods for key in keys]
        group = scores["group"] + (" (too small, not averaged)" if scores.get("too_small") else "")
        lines.append("| " + " | ".join([language, group, str(scores["pairs"]), *cells]) + " |")
    return "\n".join(lines) + "\n"


def plot_retrieval(report: dict) -> "Figure":
    """
    Bar chart of each language's accuracy (mean of the directions evaluated), one bar per method (pooling and scoring), languages grouped by
    "bitext" / "mono_only" with each group's average as a dashed line. Rendered with Agg (no pyplot state).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    methods = report.get("methods", report["poolings"])
    colors = dict(zip(methods, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    spans, positions, labels, x = [], [], [], 0.0
    for group in GROUPS:
        members = report["groups"][group]["languages"]
        if members:
            spans.append((group, x, x + len(members) - 1))
            positions += [x + i for i in range(len(members))]
            labels += members
            x += len(members) + 1.5  # a visible gap between the groups
    figure = Figure(figsize=(max(6.4, 0.3 * x + 2.0), 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    width, tallest = 0.8 / max(1, len(methods)), 0.0
    for index, method in enumerate(methods):
        offset = (index - (len(methods) - 1) / 2) * width
        heights = [
            100 * report["languages"][language][method]["mean"]
            for group, _, _ in spans
            for language in report["groups"][group]["languages"]
        ]
        tallest = max([tallest, *heights])
        axes.bar([p + offset for p in positions], heights, width, color=colors[method], label=method_title(method))
    # Languages with few eval pairs score high by chance alone (Tatoeba has some with a dozen pairs).
    chance = [
        100 / report["languages"][language]["pairs"]
        for group, _, _ in spans
        for language in report["groups"][group]["languages"]
    ]
    axes.scatter(positions, chance, marker="_", s=60, color="black", linewidths=1, label="chance", zorder=3)
    tallest = max([tallest, *chance])
    label_transform = blended_transform_factory(axes.transData, axes.transAxes)
    for number, (group, start, end) in enumerate(spans):
        averages = report["groups"][group]
        for method in methods:
            value = 100 * averages[method]["mean"]
            axes.hlines(value, start - 0.5, end + 0.5, colors=colors[method], linestyles="--", linewidth=1)
        axes.text(
            (start + end) / 2,
            1.01,
            f"{GROUP_TITLES[group]} ({len(averages['languages'])}): "
            + ", ".join(f"{method_title(method)} {100 * averages[method]['mean']:.1f}" for method in methods),
            transform=label_transform,
            ha="center",
            va="bottom",
            fontsize=9,
        )
        if number:
            axes.axvline(start - 1.25, color="grey", linewidth=0.8)
    axes.set_xticks(positions, labels, rotation=90, fontsize=8)
    axes.set_xlim(-1, max(x - 1.5, 1))
    # Scores near chance would be invisible on a fixed 0-100 axis.
    axes.set_ylim(0, min(100.0, max(5.0, 1.15 * tallest)))
    axes.set_ylabel(f"accuracy, {' and '.join(DIRECTION_TITLES[d] for d in report.get('directions', DIRECTIONS))} (%)")
    axes.legend(
        title="dashed: group average",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        title_fontsize=8,
    )
    layer = report.get("layer")
    figure.suptitle(f"Tatoeba retrieval: {report.get('model_name_or_path', 'model')}, layer {layer}", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    return figure


def write_retrieval_outputs(report: dict, output_dir: str | os.PathLike) -> list[str]:
    """Writes `retrieval.md`, `retrieval.json` and `retrieval.png` of a `retrieval_report` to `output_dir`, atomically
    (`write_files_atomically`). Returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    markdown, results, chart = (os.path.join(output_dir, name) for name in RETRIEVAL_FILES)
    writers = {
        markdown: lambda path: Path(path).write_text(format_retrieval_markdown(report), encoding="utf-8"),
        results: lambda path: write_json(path, report),
        chart: lambda path: plot_retrieval(report).savefig(path, format="png", dpi=110),
    }
    return write_files_atomically(writers)


def format_mining_markdown(report: dict) -> str:
    """The settings and scores of a `mining.json` report (run_mining.py) as Markdown, in %."""
    scores = report["scores"]

    def row(name, prefix=""):
        cells = [scores[f"{prefix}{key}"] for key in ("precision", "recall", "f1")]
        threshold = scores["best_threshold"] if not prefix else scores["threshold"]
        shown = "–" if threshold is None else f"{threshold:.4f}"
        return (
            f"| {name} | {shown} | {scores[prefix + 'mined']} | " + " | ".join(f"{100 * c:.1f}" for c in cells) + " |"
        )

    lines = [
        f"# Bitext mining: {report['model_name_or_path']}",
        "",
        f"- Source: {report['source_file']} ({report['source_sentences']} sentences); target: "
        f"{report['target_file']} ({report['target_sentences']} sentences); gold: {report['gold_file']} "
        f"({report['gold_pairs']} pairs).",
        f"- Vector: {report['pooling_description']}.",
        f"- Candidates: each sentence's best ratio margin among its {report['margin_k']} nearest neighbours by "
        f"cosine, both directions, {report['candidates']} distinct pairs; a pair is mined when its margin reaches "
        "the threshold. The best threshold is chosen on the gold pairs themselves (XTREME's BUCC figure), an "
        "upper bound; a threshold fixed beforehand gives the honest one.",
        "",
        "| threshold | margin | mined | precision | recall | F1 |",
        "|---|---:|---:|---:|---:|---:|",
        row("best F1 on gold"),
    ]
    if "threshold" in scores:
        lines.append(row("given (--threshold)", "threshold_"))
    return "\n".join(lines) + "\n"


def write_mining_outputs(report: dict, candidates: list[dict], output_dir: str | os.PathLike) -> list[str]:
    """Writes `mining.md`, `mining.json` and `candidates.tsv` to `output_dir`, atomically. Returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    markdown, results, pairs = (os.path.join(output_dir, name) for name in MINING_FILES)
    writers = {
        markdown: lambda path: Path(path).write_text(format_mining_markdown(report), encoding="utf-8"),
        results: lambda path: write_json(path, report),
        pairs: lambda path: write_candidates(path, candidates),
    }
    return write_files_atomically(writers)
