"""A tiny deterministic stream of combined pretraining examples, and a tiny trainer on it, for the trainer tests."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import torch
from datasets import load_dataset
from torch.utils.data import IterableDataset
from transformers import TrainerCallback

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer import DataArguments, InfoXLMDataCollator, InfoXLMTrainer, InfoXLMTrainingArguments
from trainer.data.dataset import Corpora, build_pretraining_dataset
from trainer.data.hf_sources import HFTextCorpus, HFTranslationCorpus


class SyntheticPretrainingStream(IterableDataset):
    """Infinite `{"mlm", "tlm", "xlco"}` examples over word ids 5..vocab-1 (XLM-R specials below), seeded."""

    def __init__(self, vocab_size: int, seed: int = 0, objectives=("mlm", "tlm", "xlco")):
        self.vocab_size, self.seed, self.objectives = vocab_size, seed, objectives

    def __iter__(self):
        rng = random.Random(self.seed)

        def sentence():
            return [rng.randrange(5, self.vocab_size) for _ in range(rng.randrange(3, 9))]

        while True:
            a, b = sentence(), sentence()
            example = {
                "mlm": {"input_ids": [0, *a, 2, *b, 2]},
                "tlm": {"input_ids": [0, *a, 2, 2, *b, 2]},
                "xlco": {"query_input_ids": [0, *a, 2], "key_input_ids": [0, *a[::-1], 2]},
            }
            yield {name: example[name] for name in self.objectives}

    def xlco_fill_dataset(self) -> "SyntheticPretrainingStream":
        """The queue-fill stream: XLCO examples under another seed (as `PretrainingDataset.xlco_fill_dataset`)."""
        return SyntheticPretrainingStream(self.vocab_size, seed=self.seed + 1_000_003, objectives=("xlco",))


class StopAfter(TrainerCallback):
    """Saves a checkpoint at update `step` and stops there: an interrupted run."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True
            control.should_training_stop = True


def tiny_infoxlm(vocab_size: int, seed: int = 0, **overrides) -> InfoXLMForPreTraining:
    torch.manual_seed(seed)
    config = InfoXLMConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        xlco_layer=2,
        **{"xlco_queue_size": 16, **overrides},
    )
    return InfoXLMForPreTraining(config)


def tiny_training_args(output_dir, max_steps: int, **args) -> InfoXLMTrainingArguments:
    defaults = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        xlco_queue_fill="masked",
    )
    return InfoXLMTrainingArguments(**{**defaults, **args})


def worker_pythonpath() -> str:
    """The tests folder (the workers import its helpers) and this checkout's root, ahead of any installed copy of
    the package, so that the workers run the code under test."""
    return os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])])


def run_torchrun(worker: Path, output_dir: Path, port: int, timeout: int = 600) -> subprocess.CompletedProcess:
    """`worker output_dir` as two CPU processes (gloo) under torch.distributed.run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": worker_pythonpath()}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    return subprocess.run(
        [*command, str(worker), str(output_dir)], env=env, capture_output=True, text=True, timeout=timeout
    )


def tiny_trainer(tokenizer, output_dir, max_steps=4, model=None, stream_seed=0, **args) -> InfoXLMTrainer:
    training_args = tiny_training_args(output_dir, max_steps, **args)
    model = model or tiny_infoxlm(len(tokenizer))
    return InfoXLMTrainer(
        model=model,
        args=training_args,
        train_dataset=SyntheticPretrainingStream(
            len(tokenizer), seed=stream_seed, objectives=training_args.objective_list
        ),
        data_collator=InfoXLMDataCollator(tokenizer),
    )


def snapshot(trainer) -> dict[str, torch.Tensor]:
    """Query weights and the whole XLCO state (key encoder, queue, pointer, fill count)."""
    state = {f"query.{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
    state.update({f"xlco.{k}": v.detach().clone() for k, v in trainer.xlco.state_dict().items()})
    return state


def set_queue_filled(xlco, filled: int) -> None:
    """Marks the first `filled` queue slots as written keys (their random initial values become negatives), through
    the public state: a full queue of known keys, as after the reference's fill."""
    state = xlco.state_dict()
    state.update(queue_filled=torch.tensor(filled), queue_pointer=torch.tensor(filled % xlco.queue_size))
    xlco.load_state_dict(state)


def assert_same(a: dict, b: dict, atol: float = 1e-6):
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= atol, worst


# ---- the same trainer on a real (tiny) corpus read by trainer.data ---------------------------------------------------

LANGUAGE_WORDS = {
    "en": "the a cat dog sat on mat house red blue green big small".split(),
    "fr": "le la chat chien sur tapis maison rouge bleu vert grand petit".split(),
    "de": "der die das katze hund auf matte haus rot blau grün groß klein".split(),
}


def write_tiny_corpus(root: Path) -> Path:
    """`root/mono/{en,fr,de}.txt` (300, 120, 40 sentences) and `root/parallel/` with fr-en as Moses files and de-en
    as JSON lines, so that the cached and the streamed readers of every format are exercised."""
    rng = random.Random(0)

    def sentence(language):
        return " ".join(rng.choice(LANGUAGE_WORDS[language]) for _ in range(rng.randrange(3, 8)))

    (root / "mono").mkdir(parents=True)
    (root / "parallel").mkdir()
    for language, size in (("en", 300), ("fr", 120), ("de", 40)):
        (root / "mono" / f"{language}.txt").write_text("".join(sentence(language) + "\n" for _ in range(size)))
    fr, en = zip(*[(sentence("fr"), sentence("en")) for _ in range(90)])
    (root / "parallel" / "t.fr-en.fr").write_text("\n".join(fr) + "\n")
    (root / "parallel" / "t.fr-en.en").write_text("\n".join(en) + "\n")
    rows = [{"translation": {"de": sentence("de"), "en": sentence("en")}} for _ in range(50)]
    (root / "parallel" / "t.de-en.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def corpus_dataset(tokenizer, root: Path, objectives=("mlm", "tlm", "xlco"), seed=0, hf_streaming=False, **data):
    """`build_pretraining_dataset` on the tiny corpus: local files (cached, or `streaming=True`), or the same text
    as streamed 🤗 datasets (`hf_streaming`)."""
    values = {
        "mono_data": [str(root / "mono")],
        "parallel_data": [str(root / "parallel")],
        "max_seq_length": 24,
        "data_cache_dir": str(root / "cache"),
        **data,
    }
    corpora = None
    if hf_streaming:
        corpora = Corpora(
            mono=[
                HFTextCorpus(load_dataset("text", data_files=str(path), split="train", streaming=True), path.stem)
                for path in sorted((root / "mono").glob("*.txt"))
            ],
            parallel=[
                HFTranslationCorpus(
                    load_dataset(
                        "json", data_files=str(root / "parallel" / "t.de-en.jsonl"), split="train", streaming=True
                    ),
                    "de",
                    "en",
                )
            ],
        )
    dataset, _ = build_pretraining_dataset(DataArguments(**values), tokenizer, list(objectives), seed, corpora)
    return dataset


def corpus_trainer(tokenizer, dataset, output_dir, max_steps=6, model=None, **args) -> InfoXLMTrainer:
    """tiny_trainer's model and arguments on a PretrainingDataset (so the stream position is checkpointed)."""
    return InfoXLMTrainer(
        model=model or tiny_infoxlm(len(tokenizer)),
        args=tiny_training_args(output_dir, max_steps, **{"xlco_queue_fill": "prefill", **args}),
        train_dataset=dataset,
        data_collator=InfoXLMDataCollator(tokenizer),
    )
