"""
Tatoeba-style sentence retrieval: sentence vectors (the XLCO vector or mean pooling), nearest-neighbour accuracy, a
Trainer callback, and the pieces of `run_retrieval.py` (loading any checkpoint, finding the Tatoeba languages, the
per-language report as Markdown, JSON and a bar chart).
"""

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, TrainerCallback

from modeling_infoxlm import InfoXLMForPreTraining

from .data import DataError, find_parallel_corpora, load_parallel_pairs
from .margin import MARGIN_K, best_by_margin
from .metrics import accuracy
from .output_folder import write_files_atomically

if TYPE_CHECKING:  # matplotlib is imported only when plotting: importing `trainer` stays fast
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# "xlco": the `<s>` state through the XLCO projection when the model has one (what the contrastive loss sees);
# "mean": the average state over the tokens of the sentence (special tokens included, padding excluded).
POOLINGS = ("xlco", "mean")
# "cosine": the nearest neighbour by cosine similarity; "margin": the best ratio margin among the k nearest
# neighbours (trainer/margin.py; LASER and XTREME's BUCC). A "method" is a pooling with a scoring: "mean" is mean
# pooling scored by cosine (the names of earlier reports), "mean/margin" the same vectors scored by margin.
SCORINGS = ("cosine", "margin")
DIRECTIONS = ("xx->en", "en->xx")
# A language with fewer eval pairs than this is reported but left out of the group averages: with n candidates
# chance is 1/n, so a language of 1 pair scores 100% whatever the model and would lift its group's average.
MIN_PAIRS = 10
GROUPS = ("bitext", "mono_only")
ENGLISH = ("eng", "en")
PROJECTION_WEIGHT = "xlco_proj.weight"


def pool_hidden_states(
    hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str, projection: torch.nn.Module | None = None
) -> torch.Tensor:
    """
    One vector per sentence from the states of one layer.

    Args:
        hidden: `(batch, seq, hidden)` states of the layer.
        attention_mask: `(batch, seq)`, 1 for tokens and 0 for padding.
        pooling: "xlco" (`<s>` state, through `projection` if given) or "mean" (average over non-padding positions).
        projection: the XLCO projection, or None for the raw `<s>` state.

    Returns:
        `(batch, dim)`: `dim` is the projection's output size for "xlco" with a projection, else `hidden`.
    """
    if pooling == "xlco":
        cls_state = hidden[:, 0]
        return cls_state if projection is None else projection(cls_state)
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")


@torch.no_grad()
def encode(
    model: InfoXLMForPreTraining,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[str],
    batch_size: int = 64,
    max_length: int = 128,
    pooling: str | Sequence[str] = "xlco",
    layer: int | None = None,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """
    Sentence vectors from the states after encoder layer `layer`, computed in eval mode (no dropout), float32 on CPU.

    Args:
        sentences: `n` sentences; each is encoded as `<s> sentence </s>`, truncated to `max_length` tokens.
        pooling: "xlco" (default) is the XLCO sentence vector exactly as training computes it
            (`InfoXLMForPreTraining.sentence_vector`: the `<s>` state through `model.xlco_proj`, or the raw `<s>`
            state when that is None); "mean" averages the states of the sentence's tokens, padding excluded. A
            sequence of names computes each from the same forward pass.
        layer: 1-based encoder layer (0: the embedding output); defaults to `model.config.xlco_layer`.

    Returns:
        `(n, dim)` vectors for one pooling name, or `{name: (n, dim)}` for a sequence of names.
    """
    names = (pooling,) if isinstance(pooling, str) else tuple(pooling)
    for name in names:
        if name not in POOLINGS:
            raise ValueError(f"unknown pooling {name!r}; expected one of {POOLINGS}")
    layer = model.config.xlco_layer if layer is None else layer
    projection = getattr(model, "xlco_proj", None)
    was_training = model.training
    model.eval()
    # Batches of similar lengths waste less compute on padding; the result does not depend on the batching.
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    pooled: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for start in range(0, len(order), batch_size):
        batch = tokenizer(
            [sentences[i] for i in order[start : start + batch_size]],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(model.device)
        hidden = model.roberta.hidden_states_at_layer(batch["input_ids"], batch["attention_mask"], layer)
        for name in names:
            pooled[name].append(pool_hidden_states(hidden, batch["attention_mask"], name, projection).float().cpu())
    model.train(was_training)
    inverse = torch.argsort(torch.tensor(order, dtype=torch.long))
    vectors = {name: torch.cat(chunks)[inverse] if chunks else torch.empty(0) for name, chunks in pooled.items()}
    return vectors[pooling] if isinstance(pooling, str) else vectors


def method_name(pooling: str, scoring: str) -> str:
    return pooling if scoring == "cosine" else f"{pooling}/{scoring}"


def retrieved_indices(
    source: torch.Tensor, target: torch.Tensor, scoring: str = "cosine", margin_k: int = MARGIN_K
) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate each source row retrieves among the targets, and each target row among the sources."""
    if scoring == "cosine":
        similarity = F.normalize(source, dim=-1) @ F.normalize(target, dim=-1).T
        return similarity.argmax(dim=1), similarity.argmax(dim=0)
    if scoring == "margin":
        (forward, _), (backward, _) = best_by_margin(source, target, margin_k)
        return forward, backward
    raise ValueError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")


def retrieval_accuracy(
    source: torch.Tensor, target: torch.Tensor, scoring: str = "cosine", margin_k: int = MARGIN_K
) -> tuple[float, float]:
    """
    Share of rows `i` whose best candidate on the other side is row `i`: the nearest neighbour by cosine similarity
    (`scoring="cosine"`) or the best ratio margin among the `margin_k` nearest neighbours (`"margin"`).

    Args:
        source, target: `(n, dim)` vectors of aligned translations.

    Returns:
        (source→target accuracy, target→source accuracy).
    """
    forward, backward = retrieved_indices(source, target, scoring, margin_k)
    gold = torch.arange(source.shape[0]).tolist()
    # Exact fractions (a count over n), not float32 means, so reports show 0.035 rather than 0.03500000014901161.
    return accuracy(forward.tolist(), gold), accuracy(backward.tolist(), gold)


def evaluate_retrieval(
    model: InfoXLMForPreTraining,
    tokenizer: PreTrainedTokenizerBase,
    pairs: dict[str, tuple[list[str], list[str]]],
    max_length: int = 128,
) -> dict[str, float]:
    """`retrieval_acc/<lang>` (mean of both directions) per language pair, and their average `retrieval_acc`."""
    metrics = {}
    for language, (source, target) in sorted(pairs.items()):
        forward, backward = retrieval_accuracy(
            encode(model, tokenizer, source, max_length=max_length),
            encode(model, tokenizer, target, max_length=max_length),
        )
        metrics[f"retrieval_acc/{language}"] = (forward + backward) / 2
    if metrics:
        metrics["retrieval_acc"] = sum(metrics.values()) / len(metrics)
    return metrics


class RetrievalEvaluationCallback(TrainerCallback):
    """Logs retrieval accuracy before training, every `eval_steps` updates, and at the end (main process only)."""

    def __init__(self, trainer, tokenizer, pairs: dict[str, tuple[list[str], list[str]]], eval_steps: int):
        self.trainer = trainer
        self.tokenizer = tokenizer
        self.pairs = pairs
        self.eval_steps = eval_steps
        self.last_step = None
        self.history: list[dict[str, float]] = []

    def _evaluate(self, state):
        if state.global_step == self.last_step:
            return
        self.last_step = state.global_step
        if not self.trainer.is_world_process_zero():
            return
        metrics = evaluate_retrieval(self.trainer.model, self.tokenizer, self.pairs)
        self.history.append({"step": state.global_step, **metrics})
        logger.info(f"step {state.global_step}: retrieval accuracy {metrics.get('retrieval_acc', 0.0):.3f}")
        self.trainer.log(dict(metrics))

    def on_train_begin(self, args, state, control, **kwargs):
        self._evaluate(state)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.eval_steps == 0:
            self._evaluate(state)

    def on_train_end(self, args, state, control, **kwargs):
        self._evaluate(state)


# --------------------------------------------------------------------------------------------------------------------
# Tatoeba evaluation of any checkpoint (run_retrieval.py)


def load_retrieval_model(
    name_or_path: str, device: str | torch.device = "cpu", **kwargs
) -> tuple[InfoXLMForPreTraining, str]:
    """
    Loads an `infoxlm` or `xlm-roberta` checkpoint as `InfoXLMForPreTraining` (float32, eval mode, on `device`).

    A projection that the checkpoint does not hold (plain XLM-R, microsoft/infoxlm-*, an `as_xlm_roberta` export) is
    dropped rather than left at its random initialisation, so the "xlco" vector is then the raw `<s>` state.

    Returns:
        (model, projection): `projection` is "trained" (loaded from the checkpoint), "missing" (not in the
        checkpoint, dropped) or "disabled" (`xlco_use_projection=false`).
    """
    kwargs.setdefault("dtype", torch.float32)
    model, info = InfoXLMForPreTraining.from_pretrained(name_or_path, output_loading_info=True, **kwargs)
    if model.xlco_proj is None:
        projection = "disabled"
    elif PROJECTION_WEIGHT in info["missing_keys"]:
        model.xlco_proj = None
        projection = "missing"
    else:
        projection = "trained"
    return model.to(device).eval(), projection


def describe_poolings(layer: int, xlco_layer: int, projection: str) -> dict[str, str]:
    """One sentence per pooling saying what its vector is, for the report."""
    where = "the embedding output" if layer == 0 else f"layer {layer}"
    if layer != xlco_layer:
        where += f" (training's xlco_layer is {xlco_layer})"
    xlco = {
        "trained": f"`<s>` state of {where} through the trained XLCO projection"
        + (", as in training" if layer == xlco_layer else ""),
        "missing": f"raw `<s>` state of {where}: the checkpoint holds no trained XLCO projection "
        f"(`{PROJECTION_WEIGHT}`), so none is applied",
        "disabled": f"raw `<s>` state of {where}: the model has no XLCO projection (`xlco_use_projection=false`)",
    }[projection]
    mean = f"mean of the states of {where} over the sentence's tokens (`<s>`, `</s>` included; padding excluded)"
    return {"xlco": xlco, "mean": mean}


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


def evaluate_tatoeba(
    model: InfoXLMForPreTraining,
    tokenizer: PreTrainedTokenizerBase,
    pairs: dict[str, tuple[list[str], list[str]]],
    layer: int | None = None,
    batch_size: int = 64,
    max_length: int = 128,
    poolings: Sequence[str] = POOLINGS,
    progress: bool = True,
    scorings: Sequence[str] = ("cosine",),
    directions: Sequence[str] = DIRECTIONS,
    margin_k: int = MARGIN_K,
) -> dict[str, dict]:
    """
    Retrieval accuracy per language, method (pooling with scoring, see `method_name`) and direction, with a
    progress bar over languages. Every query's candidates are all the other side's sentences of its language.

    Returns:
        {language: {"pairs": n, method: {direction: acc, ..., "mean": mean over `directions`}}}, accuracies in
        [0, 1].
    """
    results = {}
    for language in tqdm(sorted(pairs), desc="Tatoeba", unit="language", disable=not progress):
        foreign, english = pairs[language]
        foreign_vectors = encode(model, tokenizer, foreign, batch_size, max_length, tuple(poolings), layer)
        english_vectors = encode(model, tokenizer, english, batch_size, max_length, tuple(poolings), layer)
        results[language] = {"pairs": len(foreign)}
        for pooling in poolings:
            for scoring in scorings:
                to_english, from_english = retrieval_accuracy(
                    foreign_vectors[pooling], english_vectors[pooling], scoring, margin_k
                )
                scores = {"xx->en": to_english, "en->xx": from_english}
                scores = {direction: scores[direction] for direction in directions}
                scores["mean"] = sum(scores.values()) / len(scores)
                results[language][method_name(pooling, scoring)] = scores
    return results


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


RETRIEVAL_FILES = ("retrieval.md", "retrieval.json", "retrieval.png")


def write_retrieval_outputs(report: dict, output_dir: str | os.PathLike) -> list[str]:
    """
    Writes `retrieval.md`, `retrieval.json` and `retrieval.png` of a `retrieval_report` to `output_dir`, each to a
    temporary file first and then renamed, so an interrupted run never leaves a half-written file. Returns the paths.
    """
    os.makedirs(output_dir, exist_ok=True)
    markdown, results, chart = (os.path.join(output_dir, name) for name in RETRIEVAL_FILES)
    writers = {
        markdown: lambda path: Path(path).write_text(format_retrieval_markdown(report), encoding="utf-8"),
        results: lambda path: Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8"),
        chart: lambda path: plot_retrieval(report).savefig(path, format="png", dpi=110),
    }
    return write_files_atomically(writers)
