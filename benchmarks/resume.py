#!/usr/bin/env python
"""What a resume costs, and whether it grows with the step: the time to the first resumed update minus a fresh
start's, at update 10 and at update 5,000, side by side in one run.

    python benchmarks/resume.py                      # files and streamed 🤗 datasets, 0 and 2 workers (~5 min)
    python benchmarks/resume.py --sources files --workers 0 --steps 10 1000

Setup: the built-in CLDR demo corpus and its tokenizer (run_pretrain.py's default, written on first use), a tiny
model (2 layers x 64), batch 16, max_seq_length 128, MLM + TLM + XLCO (queue filled by masking, so that a fresh
start does not pay a prefill that a resume skips). "files": the corpus read from local files through the tokenized
cache; "streamed 🤗": the same text as `load_dataset("text" / "json", streaming=True)`, tokenized on the fly.

For each row: (1) a fresh start trains 10 updates and saves checkpoint-10; the time from `train()` to the end of
its first update is the fresh start. (2) A new trainer resumes from checkpoint-10. (3) checkpoint-5000 is
checkpoint-10 with `global_step` 5,000 and the data stream's real position after 5,000 batches (the trainer's own
loader iterated 5,000 batches, untimed): what resuming at update 5,000 reads, without training 5,000 updates first.
The model weights do not change what a resume costs. Every timed `train()` runs in a fresh process (a DataLoader's
workers left over from an earlier trainer in the same process would delay the next one's by seconds). A row
"replay" does the same with the stream hidden from
`InfoXLMTrainer` (a plain IterableDataset), so the Trainer resumes the way transformers does by default: by
re-reading and re-collating every batch before the checkpoint. Each resume is timed `--repeats` times; the table
shows the fastest (the machine may be shared).
"""

import argparse
import itertools
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from datasets import load_dataset
from transformers import AutoTokenizer, TrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workloads import pretraining_dataset  # noqa: E402

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining  # noqa: E402
from run_pretrain import DEMO_DIR, demo_arguments  # noqa: E402
from trainer import InfoXLMDataCollator, InfoXLMTrainer, InfoXLMTrainingArguments  # noqa: E402
from trainer.checkpoints import save_stream_position  # noqa: E402
from trainer.data import Corpora, find_parallel_corpora  # noqa: E402
from trainer.data.hf_sources import HFTextCorpus, HFTranslationCorpus  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", default=["files", "streamed"], choices=["files", "streamed"])
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    parser.add_argument("--steps", nargs=2, type=int, default=[10, 5000], metavar=("EARLY", "LATE"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no_replay", action="store_true", help="Skip the replay rows (transformers' resume).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time_one", default=None, help=argparse.SUPPRESS)  # internal: one timed train() (JSON)
    return parser.parse_args()


class FirstUpdateClock(TrainerCallback):
    """perf_counter at the end of the first update of this `train()` call."""

    def __init__(self):
        self.at = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.at is None:
            self.at = time.perf_counter()
            control.should_training_stop = True


class SaveAndStop(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = control.should_training_stop = True


class PlainStream(torch.utils.data.IterableDataset):
    """The same stream, not recognisable as a PretrainingDataset: the Trainer resumes it by replaying."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return iter(self.dataset)


def streamed_corpora(corpus_dir: Path, work: Path) -> Corpora:
    """The demo corpus as streamed 🤗 datasets: text files for MLM, JSON lines with a translation column for pairs."""
    mono = [
        HFTextCorpus(load_dataset("text", data_files=str(path), split="train", streaming=True), path.stem)
        for path in sorted((corpus_dir / "mono").glob("*.txt"))
    ]
    parallel = []
    for corpus in find_parallel_corpora([str(corpus_dir / "parallel")]):
        path = work / f"{corpus.pair}.jsonl"
        with open(path, "w") as f:
            for _, src, tgt in corpus.iter_rows():
                f.write(json.dumps({"translation": {corpus.src_lang: src, corpus.tgt_lang: tgt}}) + "\n")
        stream = load_dataset("json", data_files=str(path), split="train", streaming=True)
        parallel.append(HFTranslationCorpus(stream, corpus.src_lang, corpus.tgt_lang))
    return Corpora(mono=mono, parallel=parallel)


def build(tokenizer, corpus_dir, work, source, output_dir, max_steps, workers, replay=False, callbacks=()):
    dataset = pretraining_dataset(
        tokenizer,
        [str(corpus_dir / "mono")],
        [str(corpus_dir / "parallel")],
        128,
        streaming=False,
        data_cache_dir=str(work / "cache"),
        corpora=streamed_corpora(corpus_dir, work) if source == "streamed" else None,
    )
    torch.manual_seed(0)
    config = InfoXLMConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=130,
        xlco_layer=1,
        xlco_queue_size=256,
    )
    args = InfoXLMTrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=16,
        dataloader_num_workers=workers,
        xlco_queue_fill="masked",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = InfoXLMTrainer(
        model=InfoXLMForPreTraining(config),
        args=args,
        train_dataset=PlainStream(dataset) if replay else dataset,
        data_collator=InfoXLMDataCollator(tokenizer),
    )
    for callback in callbacks:
        trainer.add_callback(callback)
    return trainer


def time_to_first_update(trainer, checkpoint=None) -> float:
    clock = FirstUpdateClock()
    trainer.add_callback(clock)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return clock.at - start


def late_checkpoint(trainer, early: Path, late_step: int, replay: bool) -> Path:
    """checkpoint-<late_step>: `early` with the step count and the data position of update `late_step`."""
    late = early.with_name(f"checkpoint-{late_step}")
    shutil.rmtree(late, ignore_errors=True)
    shutil.copytree(early, late)
    state_path = late / "trainer_state.json"
    state = json.loads(state_path.read_text())
    state["global_step"] = late_step
    state_path.write_text(json.dumps(state))
    if not replay:
        loader = trainer.get_train_dataloader()
        batches = iter(loader)
        for _ in itertools.islice(batches, late_step):
            pass
        save_stream_position(loader, trainer.position_description(), late, 0)
        del batches
    return late


def time_in_fresh_process(threads: int, **job) -> float:
    command = [sys.executable, __file__, "--threads", str(threads), "--time_one", json.dumps(job)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"timed run failed: {job}\n{result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def time_one(job: dict) -> float:
    """One timed `train()` (fresh start, or resume from `job["checkpoint"]`), in this process."""
    tokenizer = AutoTokenizer.from_pretrained(DEMO_DIR / "tokenizer")
    trainer = build(
        tokenizer, DEMO_DIR / "corpus", Path(job["work"]), job["source"], Path(job["output_dir"]),
        job["max_steps"], job["workers"], job["replay"],
    )  # fmt: skip
    return time_to_first_update(trainer, job["checkpoint"])


def measure_row(tokenizer, corpus_dir, work, source, workers, steps, repeats, replay, threads) -> dict:
    early_step, late_step = steps
    output_dir = work / f"{source}-{workers}-{'replay' if replay else 'position'}"
    shutil.rmtree(output_dir, ignore_errors=True)

    def trainer(max_steps, callbacks=()):
        return build(tokenizer, corpus_dir, work, source, output_dir, max_steps, workers, replay, callbacks)

    trainer(early_step + 1, [SaveAndStop(early_step)]).train()  # writes checkpoint-<early>
    early = output_dir / f"checkpoint-{early_step}"
    late = late_checkpoint(trainer(late_step + 1), early, late_step, replay)
    job = {"work": str(work), "source": source, "output_dir": str(output_dir), "workers": workers, "replay": replay}
    runs = {"fresh": (None, early_step + 1), "early": (str(early), early_step + 1), "late": (str(late), late_step + 1)}
    row = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (checkpoint, max_steps) in runs.items():
            row[name].append(time_in_fresh_process(threads, **job, checkpoint=checkpoint, max_steps=max_steps))
    fresh = min(row["fresh"])
    return {
        "source": "streamed 🤗" if source == "streamed" else "files",
        "workers": workers,
        "resume": "replay (transformers)" if replay else "saved position (ours)",
        "fresh_s": fresh,
        "extra_early_s": min(row["early"]) - fresh,
        "extra_late_s": min(row["late"]) - fresh,
        "raw": row,
    }


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    if args.time_one:
        print(time_one(json.loads(args.time_one)))
        return
    demo_arguments(DEMO_DIR)  # writes the demo corpus and trains its tokenizer on first use
    corpus_dir, tokenizer = DEMO_DIR / "corpus", AutoTokenizer.from_pretrained(DEMO_DIR / "tokenizer")
    rows = []
    with tempfile.TemporaryDirectory(prefix="resume-benchmark-") as tmp:
        work = Path(tmp)
        configurations = [(s, w, False) for s in args.sources for w in args.workers]
        if not args.no_replay:
            configurations.append((args.sources[0], 0, True))
        for source, workers, replay in configurations:
            print(
                f"measuring: {source}, {workers} workers, {'replay' if replay else 'saved position'} ...", flush=True
            )
            rows.append(
                measure_row(
                    tokenizer, corpus_dir, work, source, workers, args.steps, args.repeats, replay, args.threads
                )
            )
    early, late = args.steps
    print(
        f"\nExtra time of a resume (time to the first resumed update minus a fresh start's), fastest of {args.repeats}"
    )
    print(
        f"| source | workers | resume | fresh start (s) | extra at {early} (s) | extra at {late:,} (s) | difference (s) |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['source']} | {r['workers']} | {r['resume']} | {r['fresh_s']:.2f} | {r['extra_early_s']:.2f} | "
            f"{r['extra_late_s']:.2f} | {r['extra_late_s'] - r['extra_early_s']:.2f} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
