#!/usr/bin/env python
"""Pretraining data throughput per rank: collated items/s one rank's loader produces at world size 1, 2 and 8.

    python benchmarks/data_throughput.py                        # 6 languages of the shared corpora, 512 tokens
    python benchmarks/data_throughput.py --modes streaming --world_sizes 1 8 --workers 0 2 --seconds 5

An item is what one training example of a run with every objective costs: an MLM block, a TLM pair and an XLCO
(mixup) pair, read from build_pretraining_dataset's stream and collated by InfoXLMDataCollator (under SeededCollator,
as the trainer does). For each way of reading the data ("streaming": read and tokenized on the fly; "cached":
tokenized once into the 🤗 datasets cache, then read from Arrow), each world size R and each number W of DataLoader
workers, rank 0 of R reads its shard of the data through torchdata's StatefulDataLoader, as the trainer does; the
other ranks are not run (they read disjoint parts of the same size), so the per-rank throughput at R ranks is that
of rank 0 alone. Each loader is started and warmed up once (streaming tokenizes the first chunk of every language
of every objective the first time it is drawn: seconds of work per worker, which a training run pays once), then
timed; the default data is 6 languages (en, fr, de, ru, zh, hi) and their 5 Tatoeba pairs with English, so that this
start-up stays short on a small machine. The last column divides by the same mode and workers at one rank: 1.0 means a rank does no work for
the others (before the data was sharded per rank, every rank read the whole stream: 0.07 at 8 ranks).

Two rates per row: items/s of wall-clock time (what the loader delivered here), and items per CPU second of the
rank's processes together (main process + DataLoader workers, from psutil): the second does not depend on what else
runs on the machine, and a dedicated core per worker turns it into wall-clock items/s. Each row is measured --repeats
times on its warm loader, interleaved with the other rows, and the median is printed.
"""

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from torchdata.stateful_dataloader import StatefulDataLoader
from transformers import AutoTokenizer
from workloads import SHARED, pretraining_dataset

from trainer import InfoXLMDataCollator
from trainer.data import SeededCollator

LANGUAGES = ["en", "fr", "de", "ru", "zh", "hi"]
PAIRS = ["fra", "deu", "rus", "cmn", "hin"]  # Tatoeba's codes, each paired with English


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", default=str(SHARED / "xlmr-tokenizer"))
    parser.add_argument("--mono_data", nargs="+", default=[str(SHARED / "mono" / f"{x}.txt") for x in LANGUAGES])
    parser.add_argument(
        "--parallel_data", nargs="+", default=[str(SHARED / "tatoeba" / f"tatoeba.{x}-eng.{x}") for x in PAIRS]
    )
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=8, help="Items per batch (per rank).")
    parser.add_argument("--world_sizes", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker processes.")
    parser.add_argument("--modes", nargs="+", default=["streaming", "cached"], choices=["streaming", "cached"])
    parser.add_argument("--seconds", type=float, default=3.0, help="Time spent measuring each row, per repeat.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--warmup_batches",
        type=int,
        default=100,
        help="Batches drawn from each loader before it is first timed (worker start-up, and the first chunk of each "
        "language that streaming tokenizes when the language is first drawn).",
    )
    parser.add_argument(
        "--data_cache_dir", default=None, help="Tokenized cache (default: a temporary folder, so 'prepare' is cold)."
    )
    return parser.parse_args(argv)


def cpu_seconds(processes) -> float:
    return sum(sum(process.cpu_times()[:2]) for process in processes)  # user + system


def warm_loader(dataset, collator, world_size, workers, batch_size, warmup, rank=0):
    """Rank `rank` of `world_size`: the batches of its shard of `dataset` through a StatefulDataLoader with
    `workers`, after `warmup` of them, and the processes that make them."""
    loader = StatefulDataLoader(
        dataset.shard_for_rank(rank, world_size, batch_size),
        batch_size=batch_size,
        collate_fn=collator,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
    )
    batches = iter(loader)
    for _ in range(warmup):
        next(batches)
    # The loader's worker processes (a private attribute of the multi-process iterator: no public accessor).
    processes = [psutil.Process()] + [psutil.Process(w.pid) for w in getattr(batches, "_workers", [])]
    return batches, processes


def measure(batches, processes, batch_size, seconds) -> tuple[float, float]:
    """(items/s, items per CPU second) of a warm loader over about `seconds`."""
    count, cpu = 0, cpu_seconds(processes)
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        next(batches)
        count += 1
    cpu = cpu_seconds(processes) - cpu
    return count * batch_size / elapsed, count * batch_size / cpu


def rank_items_per_second(
    *, tokenizer, mono_data, parallel_data, max_seq_length, batch_size, world_size, rank, num_workers, seconds
) -> float:
    """Items/s that rank `rank` of `world_size` gets from its loader of streamed data with `num_workers` workers,
    after a warm-up of 20 batches (benchmarks/gpu_check.py's data-supply part)."""
    collator = SeededCollator(InfoXLMDataCollator(tokenizer), seed=0)
    with tempfile.TemporaryDirectory(prefix="infoxlm-data-cache-") as cache_dir:
        dataset = pretraining_dataset(tokenizer, mono_data, parallel_data, max_seq_length, data_cache_dir=cache_dir)
        batches, processes = warm_loader(dataset, collator, world_size, num_workers, batch_size, 20, rank)
        items_per_second, _ = measure(batches, processes, batch_size, seconds)
        del batches  # stops the workers
    return items_per_second


def run(args) -> list[dict]:
    """One row per (mode, workers, world size): the median items/s of rank 0 and its ratio to one rank."""
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    collator = SeededCollator(InfoXLMDataCollator(tokenizer), seed=0)
    cache_dir = args.data_cache_dir or tempfile.mkdtemp(prefix="infoxlm-data-cache-")
    datasets, prepare = {}, {}
    for mode in args.modes:
        start = time.perf_counter()
        datasets[mode] = pretraining_dataset(
            tokenizer,
            args.mono_data,
            args.parallel_data,
            args.max_seq_length,
            streaming=mode == "streaming",
            data_cache_dir=cache_dir,
        )
        prepare[mode] = time.perf_counter() - start
    configs = [(m, w, r) for m in args.modes for w in args.workers for r in args.world_sizes]
    samples = {config: [] for config in configs}
    loaders = {}  # started once each; their workers wait, idle, while the other rows are timed
    for repeat in range(args.repeats):
        for mode, workers, world_size in configs:
            if (mode, workers, world_size) not in loaders:
                loaders[(mode, workers, world_size)] = warm_loader(
                    datasets[mode], collator, world_size, workers, args.batch_size, args.warmup_batches
                )
            rate, per_cpu = measure(*loaders[(mode, workers, world_size)], args.batch_size, args.seconds)
            samples[(mode, workers, world_size)].append((rate, per_cpu))
            print(
                f"  [{repeat + 1}/{args.repeats}] {mode}, {workers} workers, rank 0 of {world_size}: {rate:,.0f} "
                f"items/s, {per_cpu:,.0f} items per CPU second",
                flush=True,
            )

    loaders.clear()  # stops the workers

    def median(config, column):
        values = [sample[column] for sample in samples.get(config, [])]
        return statistics.median(values) if values else float("nan")

    rows = []
    for mode, workers, world_size in configs:
        config, alone = (mode, workers, world_size), (mode, workers, 1)
        rows.append(
            {
                "mode": mode,
                "workers": workers,
                "world_size": world_size,
                "items_per_second": median(config, 0),
                "ratio_to_one_rank": median(config, 0) / median(alone, 0),
                "items_per_cpu_second": median(config, 1),
                "cpu_ratio_to_one_rank": median(config, 1) / median(alone, 1),
                "prepare_seconds": prepare[mode],
            }
        )
    return rows


def format_table(rows: list[dict], args) -> str:
    lines = [
        f"Data throughput per rank: rank 0's loader, MLM + TLM + XLCO items, max_seq_length {args.max_seq_length}, "
        f"batch {args.batch_size}, tokenizer {Path(args.tokenizer).name}, median of {args.repeats} x "
        f"{args.seconds:g} s",
        "| data      | workers | ranks | items/s per rank | x one rank | items per CPU s | x one rank | prepare (s) |",
        "|-----------|--------:|------:|-----------------:|-----------:|----------------:|-----------:|------------:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['mode']:<9} | {row['workers']:>7} | {row['world_size']:>5} | {row['items_per_second']:>16,.0f} "
            f"| {row['ratio_to_one_rank']:>10.2f} | {row['items_per_cpu_second']:>15,.0f} "
            f"| {row['cpu_ratio_to_one_rank']:>10.2f} | {row['prepare_seconds']:>11.1f} |"
        )
    lines.append(
        "prepare = scanning + (cached) tokenizing into the datasets cache, once per run (a rerun on unchanged files "
        "reuses the cache); x one rank = against the same data and workers at one rank; items per CPU s = per CPU "
        "second of the rank's main process and workers together."
    )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = run(args)
    print()
    print(format_table(rows, args))
    return rows


if __name__ == "__main__":
    main()
