#!/usr/bin/env python
"""
Small-scale reproduction of the paper's protocol: pretrain our own small "XLM-R" with MLM (stage 1), then continue it
with MLM+TLM, InfoXLM and two InfoXLM variants at equal budget (stage 2); evaluate every model on Tatoeba retrieval
(run_retrieval.py) and zero-shot XNLI English→Swahili (run_xnli.py).

    python experiments/run_reproduction.py                            # everything in experiments/reproduction.yaml
    python experiments/run_reproduction.py --stage 1                  # the stage-1 model only
    python experiments/run_reproduction.py --stage 2 --variants infoxlm --seeds 1      # one run (e.g. in parallel)
    python experiments/run_reproduction.py --smoke --output_dir /tmp/reproduction-smoke  # the pipeline in a minute

Steps:
  1. one BPE tokenizer on the stage-1 text (all of mono/) and the bitext train split (Tatoeba i % 5 != 0);
  2. stage 1: `run_pretrain.py` with MLM only, from scratch;
  3. stage 2: for each variant and seed, `run_pretrain.py --model_name_or_path <stage 1>` (dropout 0);
  4. every model: `run_retrieval.py` (Tatoeba eval split, both directions, XLCO vector and mean pooling, bitext and
     monolingual-only languages apart) and `run_xnli.py` (train on English, test on English and Swahili);
  5. results.json, results.md and plots in --results_dir.
Each run lives in `<output_dir>/<name>/`: `pretrain.yaml`/`.log` and `model/`, `retrieval/`, `xnli/`, and
`record.json` once evaluated. A run whose record exists with the same arguments is reused (--overwrite retrains).
"""

import argparse
import concurrent.futures
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluation.retrieval import POOLINGS  # noqa: E402
from evaluation.tatoeba import find_tatoeba_languages  # noqa: E402
from trainer import load_parallel_pairs, train_tokenizer  # noqa: E402

logger = logging.getLogger("reproduction")
OBJECTIVE_LOSSES = ("mlm_loss", "tlm_loss", "xlco_loss")
SHORTCUT_CHECK = ("xlco_positive_minus_queue", "xlco_fresh_minus_queue", "xlco_in_batch_accuracy", "xlco_key_drift")
STAGE1 = "stage1"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "experiments" / "reproduction.yaml"))
    parser.add_argument(
        "--output_dir", default=None, help="Models and logs (default: the config's output_dir, outputs/reproduction)."
    )
    parser.add_argument(
        "--results_dir",
        default=None,
        help="Tables and plots (default: the config's results_dir, experiments/results).",
    )
    parser.add_argument(
        "--stage",
        choices=("1", "2", "all"),
        default="all",
        help="1: the stage-1 model only; 2: stage-2 runs only (the stage-1 model must exist; no tables); all: both.",
    )
    parser.add_argument("--variants", nargs="+", default=None, help="Default: default_variants of the config.")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="Default: seeds of the config.")
    parser.add_argument("--smoke", action="store_true", help="Tiny models, a few steps: checks the pipeline only.")
    parser.add_argument("--skip_xnli", action="store_true")
    parser.add_argument("--no_results", action="store_true", help="Train and evaluate only; no tables or plots.")
    parser.add_argument("--overwrite", action="store_true", help="Retrain runs that already finished.")
    parser.add_argument(
        "--collect",
        action="store_true",
        help="Train nothing: tables and plots from the finished runs (record.json) among --variants x --seeds "
        "and stage 1, each run listed; a run that has not finished is named and left out.",
    )
    return parser.parse_args(argv)


def resolve_folders(args, config: dict) -> None:
    """--output_dir and --results_dir from the config when not given (relative to the repository root); a smoke run
    writes its tables beside its models, never over committed results."""
    if args.output_dir is None:
        args.output_dir = str(REPO / config.get("output_dir", "outputs/reproduction"))
    if args.results_dir is None:
        results = config.get("results_dir", "experiments/results")
        args.results_dir = str(Path(args.output_dir) / "results") if args.smoke else str(REPO / results)


def load_config(args) -> dict:
    config = yaml.safe_load(Path(args.config).read_text())
    if args.smoke:
        smoke = config.pop("smoke")
        for section in ("stage1", "stage2", "xnli"):
            config[section].update(smoke.pop(section, {}))
        config.update(smoke)
    config["shared_data"] = (REPO / config["shared_data"]).resolve()
    if not config["shared_data"].is_dir():
        raise SystemExit(
            f"{args.config}: shared_data {config['shared_data']} does not exist; the reproduction trains on the "
            "corpora in ../shared/data beside the checkout (fix the path in the config)."
        )
    unknown = set(args.variants or []) - set(config["variants"])
    if unknown:
        raise SystemExit(f"--variants {sorted(unknown)}: not in {args.config} (have {sorted(config['variants'])}).")
    tatoeba = config["shared_data"] / "tatoeba"
    languages = sorted(find_tatoeba_languages(tatoeba))
    missing = set(config["mono_only_languages"]) - set(languages)
    if missing:
        raise SystemExit(f"{args.config}: mono_only_languages {sorted(missing)} have no files in {tatoeba}.")
    if "bitext_languages" not in config:
        config["bitext_languages"] = [lang for lang in languages if lang not in config["mono_only_languages"]]
    config.setdefault("retrieval_languages", config["bitext_languages"] + config["mono_only_languages"])
    return config


def stage1_tatoeba_text(config: dict, output_dir: Path) -> Path:
    """The Tatoeba *train* split of every bitext language as monolingual text for stage 1 (`stage1_tatoeba_train_text`):
    `tatoeba-train.<lang>.txt` per language and `tatoeba-train.eng.txt` (the English sides). No eval pair (i % 5 == 0)
    is ever written, nor any sentence of a mono-only language's Tatoeba file (those stay monolingual-only)."""
    folder = output_dir / "stage1-tatoeba-train"
    if (folder / "done").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pairs = load_parallel_pairs(tatoeba_source_files(config, config["bitext_languages"]), split="train")
    english = []
    for pair, (sources, targets) in sorted(pairs.items()):
        language = pair.split("-")[0]
        (folder / f"tatoeba-train.{language}.txt").write_text("".join(line + "\n" for line in sources))
        english += targets
    (folder / "tatoeba-train.eng.txt").write_text("".join(line + "\n" for line in english))
    (folder / "done").write_text(f"{len(english)} pairs\n")
    return folder


def tatoeba_source_files(config: dict, languages: list[str]) -> list[str]:
    """The `tatoeba.<xx>-eng.<xx>` file of each language (its `.eng` twin is found beside it)."""
    return [str(config["shared_data"] / "tatoeba" / f"tatoeba.{lang}-eng.{lang}") for lang in languages]


def prepare_tokenizer(config: dict, output_dir: Path) -> Path:
    """One tokenizer for every model, trained on the stage-1 text and the bitext train split (no eval pair)."""
    path = output_dir / "tokenizer"
    if (path / "tokenizer.json").is_file():
        return path
    shared = config["shared_data"]
    texts = [line.strip() for f in sorted((shared / "mono").glob("*.txt")) for line in open(f, encoding="utf-8")]
    pairs = load_parallel_pairs(tatoeba_source_files(config, config["bitext_languages"]), split="train")
    for sources, targets in pairs.values():
        texts += sources + targets
    logger.info(f"training a {config['tokenizer_vocab_size']}-piece tokenizer on {len(texts):,} sentences")
    train_tokenizer(texts, config["tokenizer_vocab_size"]).save_pretrained(path)
    return path


def run_script(script: str, arguments: dict, run_dir: Path, name: str) -> float:
    """`python <script> <run_dir>/<name>.yaml` in its own process, output to `<run_dir>/<name>.log`; returns the
    wall time in seconds."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / f"{name}.yaml").write_text(yaml.safe_dump(arguments, sort_keys=True, allow_unicode=True))
    started = time.perf_counter()
    with open(run_dir / f"{name}.log", "w") as log:
        process = subprocess.run(
            [sys.executable, str(REPO / script), str(run_dir / f"{name}.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    if process.returncode != 0:
        raise SystemExit(f"{script} failed (exit {process.returncode}): see {run_dir / f'{name}.log'}")
    return time.perf_counter() - started


def pretrain_arguments(config: dict, run: str, seed: int, run_dir: Path, tokenizer: Path, stage1_model: Path) -> dict:
    shared = config["shared_data"]
    if run == STAGE1:
        arguments = {**config["stage1"], "tokenizer_name": str(tokenizer)}
        arguments["mono_data"] = [str(shared / path) for path in arguments["mono_data"]]
        if config.get("stage1_tatoeba_train_text"):
            arguments["mono_data"].append(str(stage1_tatoeba_text(config, run_dir.parent)))
    else:
        arguments = {**config["stage2"], **config["variants"][run], "model_name_or_path": str(stage1_model)}
        arguments["parallel_data"] = tatoeba_source_files(config, config["bitext_languages"])
        arguments["retrieval_eval_data"] = tatoeba_source_files(config, config["retrieval_during_training"])
        arguments["mono_data"] = [str(shared / path) for path in arguments["mono_data"]]
    arguments.update(seed=seed, data_seed=seed, output_dir=str(run_dir / "model"))
    return arguments


def evaluate(config: dict, run_dir: Path, seed: int, skip_xnli: bool, layers: list[int] = ()) -> dict:
    """Tatoeba retrieval with run_retrieval.py and zero-shot XNLI with run_xnli.py, on the run's saved model; with
    `layers`, retrieval again from each of those encoder layers (`tatoeba_by_layer`: the bitext and mono-only group
    means per pooling)."""
    model = str(run_dir / "model")
    retrieval = {
        "model_name_or_path": model,
        "tatoeba_dir": str(config["shared_data"] / "tatoeba"),
        "languages": config["retrieval_languages"],
        "mono_only_languages": config["mono_only_languages"],
        "output_dir": str(run_dir / "retrieval"),
        "overwrite_output_dir": True,
        "disable_tqdm": True,
    }
    record = {"eval_seconds": run_script("run_retrieval.py", retrieval, run_dir, "retrieval")}
    record["tatoeba"] = json.loads((run_dir / "retrieval" / "retrieval.json").read_text())
    if layers:
        record["tatoeba_by_layer"] = {}
    for layer in layers:
        name = f"retrieval_layer{layer}"
        arguments = {**retrieval, "layer": layer, "output_dir": str(run_dir / name)}
        record["eval_seconds"] += run_script("run_retrieval.py", arguments, run_dir, name)
        groups = json.loads((run_dir / name / "retrieval.json").read_text())["groups"]
        record["tatoeba_by_layer"][str(layer)] = {
            group: {pooling: groups[group][pooling]["mean"] for pooling in POOLINGS if groups[group].get(pooling)}
            for group in ("bitext", "mono_only")
        }
    if not skip_xnli:
        xnli = config["shared_data"] / "xnli"
        arguments = {
            **config["xnli"],
            "model_name_or_path": model,
            "train_file": str(xnli / "en.dev.tsv"),
            "test_files": [f"en={xnli / 'en.test.tsv'}", f"sw={xnli / 'sw.test.tsv'}"],
            "do_train": True,
            "do_predict": True,
            "seed": seed,
            "output_dir": str(run_dir / "xnli"),
            "overwrite_output_dir": True,  # a rerun replaces the evaluation of the model it evaluates again
        }
        record["eval_seconds"] += run_script("run_xnli.py", arguments, run_dir, "xnli")
        results = json.loads((run_dir / "xnli" / "xnli_results.json").read_text())["results"]
        record["xnli"] = {language: scores["test"]["accuracy"] for language, scores in results.items()}
    return record


def training_curves(model_dir: Path) -> dict:
    """Per-objective losses, retrieval accuracy and the shortcut check against the update, from the log history."""
    history = json.loads((model_dir / "trainer_state.json").read_text())["log_history"]
    curves = {name: [] for name in (*OBJECTIVE_LOSSES, "xlco_accuracy", *SHORTCUT_CHECK, "retrieval_acc")}
    for entry in history:
        for name in curves:
            if name in entry:
                curves[name].append((entry["step"], entry[name]))
    return {name: points for name, points in curves.items() if points}


def train_and_evaluate(
    config, args, run: str, seed: int, tokenizer: Path, output_dir: Path, train_only: bool = False
) -> dict:
    """Trains the run (or reuses it) and evaluates it; `train_only` stops after training (a later call with the same
    arguments reuses the trained model and evaluates it)."""
    run_dir = output_dir / (STAGE1 if run == STAGE1 else f"{run}-seed{seed}")
    arguments = pretrain_arguments(config, run, seed, run_dir, tokenizer, output_dir / STAGE1 / "model")
    record_path = run_dir / "record.json"
    if record_path.is_file() and not args.overwrite:
        record = json.loads(record_path.read_text())
        if record["arguments"] == arguments:
            logger.info(f"{run} seed {seed}: reusing {record_path}")
            return record
        logger.info(f"{run} seed {seed}: arguments changed since {record_path}; training again")
    record = {"run": run, "seed": seed, "arguments": arguments}
    trained = run_dir / "model" / "train_results.json"
    previous = run_dir / "pretrain.yaml"
    if (
        not args.overwrite
        and trained.is_file()
        and previous.is_file()
        and yaml.safe_load(previous.read_text()) == arguments
    ):
        # Trained with these arguments, not evaluated yet (e.g. the evaluation was interrupted).
        logger.info(f"{run} seed {seed}: reusing the trained model in {run_dir / 'model'}")
        record["train_seconds"] = json.loads(trained.read_text())["train_runtime"]
    else:
        logger.info(f"{run} seed {seed}: training in {run_dir}")
        overwrite = {"overwrite_output_dir": True} if (run_dir / "model").exists() else {}
        record["train_seconds"] = run_script("run_pretrain.py", {**arguments, **overwrite}, run_dir, "pretrain")
        if overwrite:  # what the run was trained with, for the reuse check
            (run_dir / "pretrain.yaml").write_text(yaml.safe_dump(arguments, sort_keys=True, allow_unicode=True))
    if train_only:
        return record
    layers = config.get("stage1_retrieval_layers", []) if run == STAGE1 else []
    record.update(evaluate(config, run_dir, seed, args.skip_xnli, layers))
    record["curves"] = training_curves(run_dir / "model")
    record_path.write_text(json.dumps(record, indent=1))
    groups = record["tatoeba"]["groups"]
    logger.info(
        f"    {record['train_seconds'] / 60:.1f} min; Tatoeba bitext {100 * groups['bitext']['xlco']['mean']:.1f} "
        f"(xlco) / {100 * groups['bitext']['mean']['mean']:.1f} (mean pooling); XNLI {record.get('xnli')}"
    )
    return record


# ---- results ----------------------------------------------------------------------------------------------------


def headline_numbers(record: dict) -> dict[str, float]:
    groups = record["tatoeba"]["groups"]
    numbers = {}
    for group in ("bitext", "mono_only"):
        for pooling in POOLINGS:
            if groups[group].get(pooling) and groups[group][pooling]["mean"] is not None:
                numbers[f"tatoeba_{group}_{pooling}"] = groups[group][pooling]["mean"]
    for language, accuracy in record.get("xnli", {}).items():
        numbers[f"xnli_{language}"] = accuracy
    numbers["train_minutes"] = record["train_seconds"] / 60
    return numbers


def summarise(records: list[dict]) -> dict:
    """Mean, spread (max − min over seeds) and per-seed values of every headline number, per run name."""
    summary = {}
    for run in dict.fromkeys(record["run"] for record in records):
        mine = [record for record in records if record["run"] == run]
        per_seed = [headline_numbers(record) for record in mine]
        summary[run] = {
            name: {
                "mean": statistics.mean(numbers[name] for numbers in per_seed),
                "spread": max(numbers[name] for numbers in per_seed) - min(numbers[name] for numbers in per_seed),
                "seeds": {record["seed"]: numbers[name] for record, numbers in zip(mine, per_seed)},
            }
            for name in per_seed[0]
        }
        languages = mine[0]["tatoeba"]["languages"]
        summary[run]["per_language"] = {
            language: {
                pooling: statistics.mean(record["tatoeba"]["languages"][language][pooling]["mean"] for record in mine)
                for pooling in POOLINGS
            }
            for language in languages
        }
    return summary


COLUMNS = [
    ("tatoeba_bitext_xlco", "Tatoeba bitext, xlco"),
    ("tatoeba_bitext_mean", "Tatoeba bitext, mean-pool"),
    ("tatoeba_mono_only_xlco", "Tatoeba mono-only, xlco"),
    ("tatoeba_mono_only_mean", "Tatoeba mono-only, mean-pool"),
    ("xnli_en", "XNLI en"),
    ("xnli_sw", "XNLI sw"),
    ("train_minutes", "train min"),
]


def markdown_table(summary: dict) -> str:
    columns = [(name, title) for name, title in COLUMNS if any(name in numbers for numbers in summary.values())]
    lines = ["| model | " + " | ".join(title for _, title in columns) + " |", "|---|" + "---:|" * len(columns)]
    for run, numbers in summary.items():
        cells = []
        for name, _ in columns:
            if name not in numbers:
                cells.append("–")
                continue
            scale = 1 if name == "train_minutes" else 100
            mean, spread, seeds = numbers[name]["mean"], numbers[name]["spread"], len(numbers[name]["seeds"])
            cells.append(f"{scale * mean:.1f} ± {scale * spread / 2:.1f}" if seeds > 1 else f"{scale * mean:.1f}")
        seeds = ", ".join(str(seed) for seed in numbers[columns[0][0]]["seeds"])
        lines.append(f"| {run} (seed {seeds}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_language_table(summary: dict, config: dict) -> str:
    languages = [
        lang for lang in config["retrieval_languages"] if lang in next(iter(summary.values()))["per_language"]
    ]
    runs = list(summary)
    lines = [
        "| language | group | " + " | ".join(runs) + " |",
        "|---|---|" + "---:|" * len(runs),
    ]
    for language in languages:
        group = "mono-only" if language in config["mono_only_languages"] else "bitext"
        cells = [f"{100 * summary[run]['per_language'][language]['xlco']:.1f}" for run in runs]
        lines.append(f"| {language} | {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shortcut_table(records: list[dict]) -> str:
    """The shortcut check at the end of each XLCO run: the mean of its last 5 logged values (last value for the
    drift, logged once per queue turnover)."""
    names = ("xlco_loss", "xlco_accuracy", *SHORTCUT_CHECK)
    lines = ["| run | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for record in records:
        if "xlco_loss" not in record["curves"]:
            continue
        cells = []
        for name in names:
            values = [value for _, value in record["curves"].get(name, [])][-1 if name == "xlco_key_drift" else -5 :]
            cells.append(f"{statistics.mean(values):.3g}" if values else "–")
        lines.append(f"| {record['run']} (seed {record['seed']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_colours(runs: list[str]) -> dict[str, tuple]:
    """One colour per run, distinct for up to 20 runs (matplotlib's default cycle repeats after 10)."""
    palette = colormaps["tab10" if len(runs) <= 10 else "tab20"]
    return {run: palette(i % palette.N) for i, run in enumerate(runs)}


def plot_curves(records: list[dict], names: tuple[str, ...], titles: dict[str, str], path: Path) -> None:
    figure = Figure(figsize=(4 * len(names), 3.6), layout="constrained")
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    colours = run_colours(list(dict.fromkeys(record["run"] for record in records)))
    for record in records:
        colour = colours[record["run"]]
        first_seed = record["seed"] == min(r["seed"] for r in records if r["run"] == record["run"])
        for ax, name in zip(axes, names):
            points = record["curves"].get(name)
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, color=colour, alpha=0.9 if first_seed else 0.45,
                        label=record["run"] if first_seed else None)  # fmt: skip
    for ax, name in zip(axes, names):
        ax.set_title(titles.get(name, name))
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    FigureCanvasAgg(figure).print_png(str(path))


def plot_retrieval(summary: dict, config: dict, path: Path) -> None:
    """Per-language accuracy of each model, languages sorted by the InfoXLM score; mono-only languages on the right."""
    runs = list(summary)
    reference = "infoxlm" if "infoxlm" in summary else runs[-1]
    per_language = summary[reference]["per_language"]
    bitext = sorted((lang for lang in per_language if lang not in config["mono_only_languages"]),
                    key=lambda lang: -per_language[lang]["xlco"])  # fmt: skip
    mono = [lang for lang in config["mono_only_languages"] if lang in per_language]
    languages = bitext + mono
    figure = Figure(figsize=(max(10, 0.16 * len(languages) * len(runs) / 2), 4.5), layout="constrained")
    ax = figure.subplots()
    colours = run_colours(runs)
    for run in runs:
        ax.plot(range(len(languages)), [100 * summary[run]["per_language"][lang]["xlco"] for lang in languages],
                marker="o", markersize=3, linewidth=0.8, color=colours[run], label=run)  # fmt: skip
    ax.axvline(len(bitext) - 0.5, color="black", linewidth=0.8)
    ax.set_xticks(range(len(languages)))
    ax.set_xticklabels(languages, rotation=90, fontsize=6)
    ax.set_ylabel("Tatoeba retrieval accuracy (%)")
    ax.set_title("Tatoeba eval split, xlco vector, mean of xx→en and en→xx (left: bitext in training; right of the "
                 "line: monolingual only)")  # fmt: skip
    ax.legend()
    ax.grid(alpha=0.3)
    FigureCanvasAgg(figure).print_png(str(path))


def machine_line() -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        machine += f", {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return machine


def layer_table(records: list[dict]) -> str:
    """Stage-1 retrieval from each encoder layer (bitext and mono-only group means, both poolings)."""
    stage1 = next((record for record in records if record.get("tatoeba_by_layer")), None)
    if stage1 is None:
        return ""
    lines = [
        "| layer | bitext, xlco | bitext, mean-pool | mono-only, xlco | mono-only, mean-pool |",
        "|---:" * 5 + "|",
    ]
    for layer, groups in stage1["tatoeba_by_layer"].items():
        cells = [groups[g].get(p) for g in ("bitext", "mono_only") for p in POOLINGS]
        lines.append(f"| {layer} | " + " | ".join("–" if v is None else f"{100 * v:.1f}" for v in cells) + " |")
    return "Stage-1 retrieval by layer (0: the embeddings):\n\n" + "\n".join(lines) + "\n\n"


def write_results(
    records: list[dict], config: dict, args, results_dir: Path, wall_seconds: float | None = None
) -> dict:
    summary = summarise(records)
    results_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_line()
    report = {"config": str(args.config), "smoke": args.smoke, "machine": machine, "summary": summary, "runs": records}
    if wall_seconds is not None:
        report["wall_seconds"] = wall_seconds
    (results_dir / "results.json").write_text(json.dumps(report, indent=1, default=str))
    table, languages = markdown_table(summary), per_language_table(summary, config)
    wall = f" Wall time of the whole command: {wall_seconds / 60:.1f} min." if wall_seconds is not None else ""
    (results_dir / "results.md").write_text(
        f"# {config.get('title', 'InfoXLM at small scale: MLM warm start (stage 1), then continued pretraining (stage 2)')}\n\n"
        f"Accuracies in %, mean ± half the spread over seeds. Machine: {machine}.{wall}\n\n{table}\n\n"
        f"{layer_table(records)}"
        "The shortcut check at the end of each XLCO run (mean of the last 5 logs; experiments/README.md says how to "
        f"read it):\n\n{shortcut_table(records)}\n\n"
        "Tatoeba retrieval per language (xlco vector, mean of both directions and of seeds):\n\n"
        f"{languages}\n"
    )
    stage2 = [record for record in records if record["run"] != STAGE1]
    stage1 = [record for record in records if record["run"] == STAGE1]
    if stage1:
        plot_curves(stage1, ("mlm_loss",), {"mlm_loss": "stage 1: MLM loss"}, results_dir / "stage1_mlm_loss.png")
    if stage2:
        titles = {"retrieval_acc": "retrieval acc. (6 bitext langs, during training)"}
        plot_curves(stage2, (*OBJECTIVE_LOSSES, "retrieval_acc"), titles, results_dir / "losses.png")
        xlco = [record for record in stage2 if "xlco_loss" in record["curves"]]
        if xlco:
            titles = {
                "xlco_accuracy": "xlco_accuracy (vs queue)",
                "xlco_in_batch_accuracy": "in-batch accuracy (same-age keys)",
                "xlco_positive_minus_queue": "positive − queue (logits)",
                "xlco_fresh_minus_queue": "other fresh key − queue (logits)",
                "xlco_key_drift": "key drift per queue turnover",
            }
            plot_curves(xlco, ("xlco_accuracy", *SHORTCUT_CHECK), titles, results_dir / "shortcut_check.png")
    plot_retrieval(summary, config, results_dir / "retrieval.png")
    print(table)
    print(f"\nResults: {results_dir}/results.md, results.json and the plots")
    return report


def collect_records(config, args, output_dir: Path) -> list[dict]:
    """The finished runs' records: stage 1, then each variant and seed asked for (in that order)."""
    variants = args.variants or config["default_variants"]
    seeds = args.seeds if args.seeds is not None else config["seeds"]
    runs = [(STAGE1, config["stage1_seed"])] + [(variant, seed) for variant in variants for seed in seeds]
    records = []
    for run, seed in runs:
        path = output_dir / (run if run == STAGE1 else f"{run}-seed{seed}") / "record.json"
        if path.is_file():
            records.append(json.loads(path.read_text()))
        else:
            logger.warning(f"{run} seed {seed}: not finished ({path} missing); left out of the tables")
    return records


def main(argv=None) -> dict | None:
    started = time.perf_counter()
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    config = load_config(args)
    resolve_folders(args, config)
    output_dir = Path(args.output_dir)
    if args.collect:
        return write_results(collect_records(config, args, output_dir), config, args, Path(args.results_dir))
    tokenizer = prepare_tokenizer(config, output_dir)
    records = []
    stage1 = (STAGE1, config["stage1_seed"])
    parallel = max(1, int(config.get("parallel_runs", 1)))
    # With parallel runs, stage 1 is evaluated beside the stage-2 runs: only its training must come first.
    evaluate_stage1_later = args.stage == "all" and parallel > 1
    if args.stage in ("1", "all"):
        record = train_and_evaluate(config, args, *stage1, tokenizer, output_dir, train_only=evaluate_stage1_later)
        if not evaluate_stage1_later:
            records.append(record)
    elif not (output_dir / STAGE1 / "model" / "train_results.json").is_file():
        raise SystemExit(
            f"--stage 2: no trained stage-1 model in {output_dir / STAGE1 / 'model'}; run --stage 1 first."
        )
    if args.stage in ("2", "all"):
        variants = args.variants or config["default_variants"]
        seeds = args.seeds if args.seeds is not None else config["seeds"]
        runs = [stage1] * evaluate_stage1_later + [(variant, seed) for variant in variants for seed in seeds]
        parallel = min(parallel + evaluate_stage1_later, len(runs))  # stage 1's evaluation takes no run's place
        if parallel > 1:
            # Runs share the machine (one GPU: each process its own CUDA context); their threads share the cores.
            os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // parallel)))
            logger.info(f"{len(runs)} runs, {parallel} at a time")
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            work = [pool.submit(train_and_evaluate, config, args, v, s, tokenizer, output_dir) for v, s in runs]
            records += [future.result() for future in work]  # in variant x seed order; the first failure raises
    if args.no_results or args.stage == "2":
        return None
    return write_results(records, config, args, Path(args.results_dir), time.perf_counter() - started)


if __name__ == "__main__":
    main()
