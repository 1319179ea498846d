#!/usr/bin/env python
"""
Small-scale reproduction of the InfoXLM ablation: MLM vs MLM+TLM vs MLM+TLM+XLCO, trained from scratch at equal
budget, evaluated on Tatoeba retrieval and zero-shot XNLI English→Swahili.

    python experiments/run_ablation.py                              # the committed results (≈ 75 min on 2 CPU cores)
    python experiments/run_ablation.py --variants infoxlm_no_mixup --seeds 0
    python experiments/run_ablation.py --smoke --output_dir /tmp/ablation-smoke   # the whole pipeline in a minute

Everything is declared in experiments/ablation.yaml. Steps:
  1. train one BPE tokenizer on the monolingual text and the bitext train split (shared by every variant);
  2. for each variant and seed, write `run.yaml` and train with `python run_pretrain.py run.yaml`;
  3. Tatoeba retrieval on the eval split, both directions, for the bitext languages and, separately, for languages
     that only had monolingual text; zero-shot XNLI (train on English, test on English and Swahili) with run_xnli.py;
  4. write results.json, results.md and the plots to --results_dir.
Finished runs are reused (delete their folder, or pass --overwrite, to retrain).
"""

import argparse
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
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from transformers import AutoTokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modeling_infoxlm import InfoXLMForPreTraining  # noqa: E402
from trainer import load_parallel_pairs, train_tokenizer  # noqa: E402
from trainer.retrieval import encode, retrieval_accuracy  # noqa: E402

logger = logging.getLogger("ablation")
OBJECTIVE_LOSSES = ("mlm_loss", "tlm_loss", "xlco_loss")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "experiments" / "ablation.yaml"))
    parser.add_argument("--output_dir", default=str(REPO / "outputs" / "ablation"), help="Models and logs.")
    parser.add_argument("--results_dir", default=None, help="Tables and plots (default: experiments/results).")
    parser.add_argument("--variants", nargs="+", default=None, help="Default: default_variants of the config.")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="Default: seeds of the config.")
    parser.add_argument("--smoke", action="store_true", help="Tiny model, a few steps: checks the pipeline only.")
    parser.add_argument("--skip_xnli", action="store_true")
    parser.add_argument("--overwrite", action="store_true", help="Retrain runs that already finished.")
    args = parser.parse_args(argv)
    if args.results_dir is None:
        args.results_dir = str(Path(args.output_dir) / "results") if args.smoke else str(REPO / "experiments/results")
    return args


def load_config(args) -> dict:
    config = yaml.safe_load(Path(args.config).read_text())
    if args.smoke:
        smoke = config.pop("smoke")
        for section in ("pretrain", "xnli"):
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
    return config


def tatoeba_files(shared: Path, language: str) -> list[str]:
    files = [shared / "tatoeba" / f"tatoeba.{language}-eng.{side}" for side in (language, "eng")]
    for path in files:
        if not path.is_file():
            raise SystemExit(f"{path} is missing: is {language!r} a Tatoeba language (ISO 639-3, e.g. fra)?")
    return [str(files[0])]


def prepare_tokenizer(config: dict, output_dir: Path):
    """One tokenizer for every variant, trained on exactly the text the runs see (no Tatoeba eval pairs)."""
    path = output_dir / "tokenizer"
    if (path / "tokenizer.json").is_file():
        return path, AutoTokenizer.from_pretrained(path)
    shared = config["shared_data"]
    texts = [line.strip() for f in sorted((shared / "mono").glob("*.txt")) for line in open(f, encoding="utf-8")]
    for language in config["bitext_languages"]:
        for source, target in load_parallel_pairs(tatoeba_files(shared, language), split="train").values():
            texts += source + target
    logger.info(f"training a {config['tokenizer_vocab_size']}-piece tokenizer on {len(texts):,} sentences")
    tokenizer = train_tokenizer(texts, config["tokenizer_vocab_size"])
    tokenizer.save_pretrained(path)
    return path, tokenizer


def run_pretraining(config: dict, variant: str, seed: int, run_dir: Path, tokenizer_path: Path) -> float:
    """Train one variant with run_pretrain.py in its own process; returns the wall time in seconds."""
    shared = config["shared_data"]
    arguments = {**config["pretrain"], **config["variants"][variant]}
    arguments["mono_data"] = [str(shared / path) for path in arguments["mono_data"]]
    bitext = [f for language in config["bitext_languages"] for f in tatoeba_files(shared, language)]
    arguments.update(
        tokenizer_name=str(tokenizer_path),
        parallel_data=bitext,
        retrieval_eval_data=bitext,
        seed=seed,
        data_seed=seed,
        output_dir=str(run_dir),
    )
    started = time.perf_counter()
    run_script("run_pretrain.py", arguments, run_dir, "train.log")
    return time.perf_counter() - started


def run_script(script: str, arguments: dict, output_dir: Path, log_name: str) -> None:
    """`python <script> <output_dir>/run.yaml` in its own process, output to `<output_dir>/<log_name>`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "run.yaml").write_text(yaml.safe_dump(arguments, sort_keys=True, allow_unicode=True))
    with open(output_dir / log_name, "w") as log:
        process = subprocess.run(
            [sys.executable, str(REPO / script), str(output_dir / "run.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    if process.returncode != 0:
        raise SystemExit(f"{script} failed (exit {process.returncode}): see {output_dir / log_name}")


def evaluate_tatoeba(config: dict, run_dir: Path, max_pairs: int | None) -> dict:
    """Retrieval accuracy on the Tatoeba eval split per language: xx→en and en→xx, for both language groups."""
    model = InfoXLMForPreTraining.from_pretrained(run_dir)
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    results = {}
    for group in ("bitext_languages", "mono_only_languages"):
        for language in config[group]:
            files = tatoeba_files(config["shared_data"], language)
            ((source, target),) = load_parallel_pairs(files, split="eval", max_pairs=max_pairs).values()
            to_en, from_en = retrieval_accuracy(encode(model, tokenizer, source), encode(model, tokenizer, target))
            results[language] = {"group": group, "xx->en": to_en, "en->xx": from_en, "mean": (to_en + from_en) / 2}
    return results


def run_xnli(config: dict, run_dir: Path, seed: int) -> dict:
    xnli = config["shared_data"] / "xnli"
    output_dir = run_dir / "xnli"
    arguments = {
        **config["xnli"],
        "model_name_or_path": str(run_dir),
        "train_file": str(xnli / "en.dev.tsv"),
        "test_files": [f"en={xnli / 'en.test.tsv'}", f"sw={xnli / 'sw.test.tsv'}"],
        "do_train": True,
        "do_predict": True,
        "seed": seed,
        "output_dir": str(output_dir),
    }
    run_script("run_xnli.py", arguments, output_dir, "xnli.log")
    results = json.loads((output_dir / "xnli_results.json").read_text())["results"]
    return {language: scores["test"]["accuracy"] for language, scores in results.items()}


def training_curves(run_dir: Path) -> dict:
    """Per-objective losses and retrieval accuracy against the update step, from the Trainer's log history."""
    history = json.loads((run_dir / "trainer_state.json").read_text())["log_history"]
    curves = {name: [] for name in (*OBJECTIVE_LOSSES, "retrieval_acc")}
    for entry in history:
        for name in curves:
            if name in entry:
                curves[name].append((entry["step"], entry[name]))
    return {name: points for name, points in curves.items() if points}


def group_mean(tatoeba: dict, group: str) -> float:
    return statistics.mean(scores["mean"] for scores in tatoeba.values() if scores["group"] == group)


def summarise(runs: list[dict], config: dict) -> dict:
    """Mean and spread (max − min over seeds) of every headline number, per variant."""
    summary = {}
    for variant in dict.fromkeys(run["variant"] for run in runs):
        mine = [run for run in runs if run["variant"] == variant]
        numbers = {
            "tatoeba_bitext": [group_mean(run["tatoeba"], "bitext_languages") for run in mine],
            "tatoeba_mono_only": [group_mean(run["tatoeba"], "mono_only_languages") for run in mine],
            "train_minutes": [run["train_seconds"] / 60 for run in mine],
        }
        for language in ("en", "sw"):
            if all(language in run.get("xnli", {}) for run in mine):
                numbers[f"xnli_{language}"] = [run["xnli"][language] for run in mine]
        summary[variant] = {
            name: {"mean": statistics.mean(values), "spread": max(values) - min(values), "seeds": values}
            for name, values in numbers.items()
        }
        languages = config["bitext_languages"] + config["mono_only_languages"]
        summary[variant]["per_language"] = {
            language: statistics.mean(run["tatoeba"][language]["mean"] for run in mine) for language in languages
        }
    return summary


def markdown_table(summary: dict, config: dict) -> str:
    columns = [("tatoeba_bitext", "Tatoeba, bitext langs"), ("tatoeba_mono_only", "Tatoeba, mono-only langs")]
    columns += [
        (f"xnli_{lang}", f"XNLI {lang}") for lang in ("en", "sw") if f"xnli_{lang}" in next(iter(summary.values()))
    ]
    columns.append(("train_minutes", "train min"))
    lines = [
        "| variant | " + " | ".join(title for _, title in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for variant, numbers in summary.items():
        cells = []
        for name, _ in columns:
            mean, spread = numbers[name]["mean"], numbers[name]["spread"]
            scale = 1 if name == "train_minutes" else 100
            cells.append(f"{scale * mean:.1f} ± {scale * spread / 2:.1f}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    languages = config["bitext_languages"] + config["mono_only_languages"]
    lines += [
        "",
        "Retrieval accuracy per language (mean of xx→en and en→xx, mean over seeds; * = bitext in training):",
        "",
        "| variant | "
        + " | ".join(f"{lang}{'*' if lang in config['bitext_languages'] else ''}" for lang in languages),
        "|---|" + "---:|" * len(languages),
    ]
    lines[-2] += " |"
    for variant, numbers in summary.items():
        lines.append(
            f"| {variant} | " + " | ".join(f"{100 * numbers['per_language'][lang]:.1f}" for lang in languages) + " |"
        )
    return "\n".join(lines)


def plot_losses(runs: list[dict], path: Path) -> None:
    figure = Figure(figsize=(15, 4), layout="constrained")
    axes = figure.subplots(1, 4)
    colours = {}
    for run in runs:
        colour = colours.setdefault(run["variant"], f"C{len(colours)}")
        for ax, name in zip(axes, (*OBJECTIVE_LOSSES, "retrieval_acc")):
            points = run["curves"].get(name)
            if points:
                steps, values = zip(*points)
                label = run["variant"] if run["seed"] == runs[0]["seed"] else None
                ax.plot(steps, values, color=colour, alpha=0.9 if label else 0.45, label=label)
    for ax, name in zip(axes, (*OBJECTIVE_LOSSES, "retrieval acc. (bitext langs, during training)")):
        ax.set_title(name)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    axes[0].legend()
    FigureCanvasAgg(figure).print_png(str(path))


def plot_retrieval(summary: dict, config: dict, path: Path) -> None:
    languages = config["bitext_languages"] + config["mono_only_languages"]
    figure = Figure(figsize=(12, 4), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / len(summary)
    for i, (variant, numbers) in enumerate(summary.items()):
        values = [100 * numbers["per_language"][lang] for lang in languages]
        ax.bar([x + i * width for x in range(len(languages))], values, width, label=variant)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(languages))])
    ax.set_xticklabels([f"{lang}*" if lang in config["bitext_languages"] else lang for lang in languages])
    ax.axvline(len(config["bitext_languages"]) - 0.5 + 0.4 - width / 2, color="black", linewidth=0.8)
    ax.set_ylabel("Tatoeba retrieval accuracy (%)")
    ax.set_title("Tatoeba eval split, mean of xx→en and en→xx (* = bitext in training; right: monolingual only)")
    ax.legend()
    FigureCanvasAgg(figure).print_png(str(path))


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    config = load_config(args)
    variants = args.variants or config["default_variants"]
    seeds = args.seeds if args.seeds is not None else config["seeds"]
    output_dir = Path(args.output_dir)
    tokenizer_path, _ = prepare_tokenizer(config, output_dir)

    runs = []
    for number, (variant, seed) in enumerate(((v, s) for v in variants for s in seeds), start=1):
        run_dir = output_dir / f"{variant}-seed{seed}"
        record = run_dir / "ablation_run.json"
        if record.is_file() and not args.overwrite:
            logger.info(f"[{number}/{len(variants) * len(seeds)}] {variant} seed {seed}: reusing {record}")
            runs.append(json.loads(record.read_text()))
            continue
        logger.info(f"[{number}/{len(variants) * len(seeds)}] {variant} seed {seed}: training in {run_dir}")
        run = {
            "variant": variant,
            "seed": seed,
            "train_seconds": run_pretraining(config, variant, seed, run_dir, tokenizer_path),
        }
        run["tatoeba"] = evaluate_tatoeba(config, run_dir, config.get("retrieval_max_pairs"))
        if not args.skip_xnli:
            run["xnli"] = run_xnli(config, run_dir, seed)
        run["curves"] = training_curves(run_dir)
        record.write_text(json.dumps(run, indent=1))
        runs.append(run)
        logger.info(
            f"    {run['train_seconds'] / 60:.1f} min; Tatoeba bitext {100 * group_mean(run['tatoeba'], 'bitext_languages'):.1f}, "
            f"mono-only {100 * group_mean(run['tatoeba'], 'mono_only_languages'):.1f}; XNLI {run.get('xnli')}"
        )

    summary = summarise(runs, config)
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    report = {"config": str(args.config), "smoke": args.smoke, "machine": machine, "summary": summary, "runs": runs}
    (results_dir / "results.json").write_text(json.dumps(report, indent=1, default=str))
    table = markdown_table(summary, config)
    (results_dir / "results.md").write_text(
        f"# InfoXLM ablation at small scale\n\nMean ± half the spread over seeds {seeds}; accuracies in %. "
        f"Machine: {machine}.\n\n{table}\n"
    )
    plot_losses(runs, results_dir / "losses.png")
    plot_retrieval(summary, config, results_dir / "retrieval.png")
    print(table)
    print(f"\nResults: {results_dir}/results.md, results.json, losses.png, retrieval.png")
    return report


if __name__ == "__main__":
    main()
