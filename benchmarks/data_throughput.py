#!/usr/bin/env python
"""Pretraining data throughput: collated tokens per second for each objective, against a training step's appetite.

    python benchmarks/data_throughput.py                       # shared corpora + XLM-R tokenizer, 512 tokens
    python benchmarks/data_throughput.py --step_tokens_per_second 250 --seconds 5 --modes cached streaming

For each objective (MLM blocks, TLM pairs, XLCO mixup pairs) and each way of reading the data ("cached":
tokenized once into the 🤗 datasets cache, then read from Arrow; "streaming": read and tokenized on the fly) it
times fetching examples from build_pretraining_dataset and collating them with InfoXLMDataCollator, in the main
process (no DataLoader workers, the worst case). Tokens are real (non-padding) tokens of the collated batch, both
sides for XLCO. The last column divides by --step_tokens_per_second, what one training step consumes: a base-size
model on this CPU eats about 8 x 128 tokens per ~5 s, i.e. ~250 tokens/s, so anything well above 10x means data
loading is never the bottleneck.
"""

import argparse
import itertools
import logging
import tempfile
import time
from pathlib import Path

from transformers import AutoTokenizer

from trainer import DataArguments, InfoXLMDataCollator, build_pretraining_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", default=str(SHARED / "xlmr-tokenizer"))
    parser.add_argument("--mono_data", nargs="+", default=[str(SHARED / "mono")])
    parser.add_argument("--parallel_data", nargs="+", default=[str(SHARED / "tatoeba")])
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="Time spent measuring each row.")
    parser.add_argument(
        "--warmup_batches",
        type=int,
        default=100,
        help="Batches drawn before timing, so that every language has been opened (streaming tokenizes a first "
        "chunk of each language when it is first drawn).",
    )
    parser.add_argument("--step_tokens_per_second", type=float, default=250.0)
    parser.add_argument("--modes", nargs="+", default=["cached", "streaming"], choices=["cached", "streaming"])
    parser.add_argument("--objectives", nargs="+", default=["mlm", "tlm", "xlco"], choices=["mlm", "tlm", "xlco"])
    parser.add_argument(
        "--data_cache_dir", default=None, help="Tokenized cache (default: a temporary folder, so 'prepare' is cold)."
    )
    return parser.parse_args()


def count_tokens(batch: dict) -> int:
    return sum(int(t.sum()) for part in batch.values() for name, t in part.items() if name.endswith("attention_mask"))


def measure(dataset, collator, batch_size: int, seconds: float, warmup_batches: int) -> tuple[float, float]:
    """(tokens/s, examples/s) of fetching + collating batches for about `seconds`, after a warm-up."""
    examples = iter(dataset)
    for _ in range(warmup_batches):
        collator(list(itertools.islice(examples, batch_size)))
    tokens = batches = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        tokens += count_tokens(collator(list(itertools.islice(examples, batch_size))))
        batches += 1
    return tokens / elapsed, batches * batch_size / elapsed


def main():
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    collator = InfoXLMDataCollator(tokenizer)
    cache_dir = args.data_cache_dir or tempfile.mkdtemp(prefix="infoxlm-data-cache-")
    rows = []
    for mode in args.modes:
        for objective in args.objectives:
            data_args = DataArguments(
                mono_data=args.mono_data if objective == "mlm" else None,
                parallel_data=args.parallel_data if objective != "mlm" else None,
                max_seq_length=args.max_seq_length,
                streaming=mode == "streaming",
                data_cache_dir=cache_dir,
            )
            start = time.perf_counter()
            dataset, _ = build_pretraining_dataset(data_args, tokenizer, [objective], seed=0)
            prepare = time.perf_counter() - start
            tokens_per_second, examples_per_second = measure(
                dataset, collator, args.batch_size, args.seconds, args.warmup_batches
            )
            rows.append((objective, mode, prepare, tokens_per_second, examples_per_second))
            print(f"  measured {objective} {mode}", flush=True)

    ratio_header = f"x step ({args.step_tokens_per_second:g} tok/s)"
    print()
    print(
        f"Data throughput: max_seq_length {args.max_seq_length}, batch {args.batch_size}, "
        f"tokenizer {Path(args.tokenizer).name}, main process only"
    )
    print(f"| objective | data      | prepare (s) | tokens/s  | examples/s | {ratio_header} |")
    print(f"|-----------|-----------|-------------|-----------|------------|{'-' * (len(ratio_header) + 2)}|")
    for objective, mode, prepare, tokens_per_second, examples_per_second in rows:
        ratio = f"{tokens_per_second / args.step_tokens_per_second:,.0f}x"
        print(
            f"| {objective:<9} | {mode:<9} | {prepare:>11.1f} | {tokens_per_second:>9,.0f} | "
            f"{examples_per_second:>10,.1f} | {ratio:>{len(ratio_header)}} |"
        )
    print(
        "\nprepare = scanning + (cached mode) tokenizing into the datasets cache, done once; "
        "cached runs over unchanged files reuse it."
    )


if __name__ == "__main__":
    main()
