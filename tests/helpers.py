"""
What the tests share, imported one way (`from helpers import ...`; conftest.py holds the fixtures built on it):

- a tiny offline tokenizer, and the ONE tiny config builder (`tiny_config`) with the model, checkpoint and trainer
  built on it (`tiny_infoxlm`, `save_tiny_checkpoint`, `tiny_trainer`, the synthetic stream they train on);
- tiny data: a text corpus, XNLI and Tatoeba folders, and the workspace the script tests run `run_pretrain.py` in;
- running things: the torchrun runner of tests/workers/, the scripts as subprocesses, their one-line errors;
- comparisons: trainer snapshots, binomial tolerances, the hand computation of retrieval vectors.
"""

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import torch
from datasets import load_dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from torch.utils.data import IterableDataset
from transformers import PreTrainedTokenizerFast, TrainerCallback

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer import DataArguments, InfoXLMDataCollator, InfoXLMTrainer, InfoXLMTrainingArguments
from trainer.data import (  # XLM-R's ids 0..3; <mask> is 4
    SPECIAL_TOKENS,
    Corpora,
    build_pretraining_dataset,
    xlmr_style_tokenizer,
)
from trainer.data.hf_sources import HFTextCorpus, HFTranslationCorpus

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
WORKERS = Path(__file__).parent / "workers"  # the scripts tests launch under torchrun, one process per rank

# ---- the tiny tokenizer -------------------------------------------------------------------------------------------

WORDS = (
    "the a cat dog sat on mat house red blue green big small one two three and or is was "
    "le la chat chien sur tapis maison rouge bleu vert grand petit un deux trois et ou est "
    "der die das katze hund auf matte haus rot blau grün groß klein eins zwei drei und oder ist"
).split()


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer with XLM-R's special tokens and pair layout `<s> A </s></s> B </s>`."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return xlmr_style_tokenizer(tokenizer)


# ---- the tiny config, model, checkpoint and trainer ---------------------------------------------------------------


def tiny_config(config_class, vocab_size: int, **overrides):
    """Hidden 32, 2 layers, 2 heads: fast enough for end-to-end runs on CPU. Every tiny model of the tests is built
    from this config (`overrides` change the fields a test needs: its depth, its XLCO layer, ...)."""
    fields = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=130
    )
    return config_class(vocab_size=vocab_size, **{**fields, **overrides})


# The trainer tests' model: hidden 16 and 3 layers, so that the XLCO layer (2) is not the last one; a queue of 16.
TRAINER_MODEL = dict(hidden_size=16, num_hidden_layers=3, intermediate_size=32, xlco_layer=2, xlco_queue_size=16)


def tiny_infoxlm(vocab_size: int, seed: int = 0, **overrides) -> InfoXLMForPreTraining:
    """A freshly initialised (under `seed`) InfoXLMForPreTraining of the trainer tests' shape."""
    torch.manual_seed(seed)
    config = tiny_config(InfoXLMConfig, vocab_size, **{**TRAINER_MODEL, "max_position_embeddings": 64, **overrides})
    return InfoXLMForPreTraining(config)


def save_tiny_checkpoint(kind: str, directory: Path, tokenizer, save_tokenizer: bool = True, **overrides) -> Path:
    """
    A randomly initialised pretraining checkpoint, with its tokenizer unless `save_tokenizer` is false:
    `xlm-roberta` (XLMRobertaForMaskedLM, like xlm-roberta-base), `bert` (BertForMaskedLM, like mBERT) or `infoxlm`
    (InfoXLMForPreTraining with XLCO layer 1, the format run_pretrain.py writes).
    """
    from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    if kind == "xlm-roberta":
        model = XLMRobertaForMaskedLM(tiny_config(XLMRobertaConfig, len(tokenizer), **overrides))
    elif kind == "bert":
        model = BertForMaskedLM(tiny_config(BertConfig, len(tokenizer), pad_token_id=1, **overrides))
    else:
        config = tiny_config(InfoXLMConfig, len(tokenizer), xlco_layer=1, xlco_queue_size=64, **overrides)
        model = InfoXLMForPreTraining(config)
    model.save_pretrained(directory)
    if save_tokenizer:
        tokenizer.save_pretrained(directory)
    return directory


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


def tiny_trainer(
    tokenizer, output_dir, max_steps=4, model=None, stream_seed=0, dataset=None, **args
) -> InfoXLMTrainer:
    """
    An InfoXLMTrainer of the tiny model (`tiny_infoxlm` unless `model`) on the synthetic stream (seed `stream_seed`),
    or on `dataset`, a PretrainingDataset of a real corpus (`corpus_dataset`): then the stream position is
    checkpointed and the queue is filled by a prefill pass over it, as run_pretrain.py does.
    """
    if dataset is not None:
        args = {"xlco_queue_fill": "prefill", **args}
    training_args = tiny_training_args(output_dir, max_steps, **args)
    if dataset is None:
        dataset = SyntheticPretrainingStream(len(tokenizer), seed=stream_seed, objectives=training_args.objective_list)
    return InfoXLMTrainer(
        model=model or tiny_infoxlm(len(tokenizer)),
        args=training_args,
        train_dataset=dataset,
        data_collator=InfoXLMDataCollator(tokenizer),
    )


class StopAfter(TrainerCallback):
    """Saves a checkpoint at update `step` and stops there: an interrupted run."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True
            control.should_training_stop = True


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


# ---- two processes under torchrun ---------------------------------------------------------------------------------


def worker_pythonpath() -> str:
    """The tests folder (the workers import this module) and this checkout's root, ahead of any installed copy of
    the package, so that the workers run the code under test."""
    return os.pathsep.join([str(Path(__file__).parent), str(REPO)])


def run_torchrun(worker: Path, output_dir: Path, port: int, timeout: int = 600) -> subprocess.CompletedProcess:
    """`worker output_dir` as two CPU processes (gloo) under torch.distributed.run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": worker_pythonpath()}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    return subprocess.run(
        [*command, str(worker), str(output_dir)], env=env, capture_output=True, text=True, timeout=timeout
    )


# ---- a tiny text corpus read by trainer.data ----------------------------------------------------------------------

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


# ---- XNLI (run_xnli.py) -------------------------------------------------------------------------------------------

XNLI_LABELS = ["entailment", "neutral", "contradiction"]
# A synthetic NLI task in the tiny vocabulary: the hypothesis' first word gives the label away (learnable in seconds).
XNLI_WORDS = {
    "en": {
        "cues": ["one", "two", "three"],
        "the": "the",
        "is": "is",
        "nouns": "cat dog house mat",
        "adj": "red blue big small",
    },
    "fr": {
        "cues": ["un", "deux", "trois"],
        "the": "le",
        "is": "est",
        "nouns": "chat chien maison tapis",
        "adj": "rouge bleu grand petit",
    },
}


def tiny_xnli_rows(language: str, count: int, seed: int) -> list[dict]:
    """`count` examples `{premise, hypothesis, label}` (label = id), balanced over the three labels."""
    words, rng = XNLI_WORDS[language], random.Random(f"{language}-{seed}")
    nouns, adjectives = words["nouns"].split(), words["adj"].split()
    rows = []
    for i in range(count):
        label = i % 3
        premise = f"{words['the']} {rng.choice(nouns)} {words['is']} {rng.choice(adjectives)}"
        hypothesis = f"{words['cues'][label]} {rng.choice(nouns)} {rng.choice(adjectives)}"
        rows.append({"premise": premise, "hypothesis": hypothesis, "label": label})
    return rows


def write_tiny_xnli(directory: Path) -> Path:
    """
    A small XNLI-like data folder: `train.jsonl` (English, label ids), `en.dev.tsv`/`en.test.tsv` (🤗 column names,
    label names) and `fr.dev.tsv`/`fr.test.tsv` (XNLI 1.0 column names `sentence1`, `sentence2`, `gold_label`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "train.jsonl", "w", encoding="utf-8") as f:
        for row in tiny_xnli_rows("en", 96, seed=0):
            f.write(json.dumps(row) + "\n")
    for language, columns in (
        ("en", ("premise", "hypothesis", "label")),
        ("fr", ("sentence1", "sentence2", "gold_label")),
    ):
        for split, count, seed in (("dev", 24, 1), ("test", 36, 2)):
            lines = ["\t".join(columns)]
            lines += [
                f"{r['premise']}\t{r['hypothesis']}\t{XNLI_LABELS[r['label']]}"
                for r in tiny_xnli_rows(language, count, seed)
            ]
            (directory / f"{language}.{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


# ---- Tatoeba (run_retrieval.py, run_mining.py) and the hand computation of its sentence vectors -------------------

ENGLISH_WORDS, FRENCH_WORDS, GERMAN_WORDS = WORDS[:20], WORDS[20:38], WORDS[38:]


def random_sentences(rng: random.Random, words: list[str], count: int) -> list[str]:
    """`count` distinct sentences of 2 to 9 words: distinct so that no two candidates tie, varied so batches pad."""
    sentences: dict[str, None] = {}
    while len(sentences) < count:
        sentences[" ".join(rng.choice(words) for _ in range(rng.randint(2, 9)))] = None
    return list(sentences)


def write_pair(directory: Path, language: str, foreign: list[str], english: list[str]) -> None:
    for side, lines in ((language, foreign), ("eng", english)):
        (directory / f"tatoeba.{language}-eng.{side}").write_text("".join(f"{s}\n" for s in lines), encoding="utf-8")


def write_tiny_tatoeba(directory: Path, lines: int = 50) -> Path:
    """
    fra and deu: random sentences on both sides (accuracies near chance, different in each direction); sco: a copy
    of its English side (every sentence retrieves its own copy); enm: its English side with the word order reversed
    (the same bag of words: easy for mean pooling, harder for the `<s>` state).
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for language in ("fra", "deu", "sco", "enm"):
        english = random_sentences(rng, ENGLISH_WORDS, lines)
        if language == "sco":
            foreign = english
        elif language == "enm":
            foreign = [" ".join(reversed(sentence.split())) for sentence in english]
        else:
            foreign = random_sentences(rng, FRENCH_WORDS if language == "fra" else GERMAN_WORDS, lines)
        write_pair(directory, language, foreign, english)
    (directory / "README.md").write_text("documentation is skipped\n")
    return directory


def eval_split(directory: Path, language: str, every: int = 5) -> tuple[list[str], list[str]]:
    """Lines i with i % every == 0 of both files, read by hand."""
    sides = [
        (directory / f"tatoeba.{language}-eng.{side}").read_text("utf-8").splitlines() for side in (language, "eng")
    ]
    rows = [(x, e) for i, (x, e) in enumerate(zip(*sides)) if i % every == 0 and x.strip() and e.strip()]
    return [x for x, _ in rows], [e for _, e in rows]


@torch.no_grad()
def reference_vectors(model, tokenizer, sentences, layer: int, projection=None) -> dict:
    """Each sentence alone (no padding at all) through the full encoder (an XLMRobertaModel); `hidden_states[layer]`
    of that run."""
    vectors = {"xlco": [], "mean": []}
    for sentence in sentences:
        inputs = tokenizer(sentence, return_tensors="pt")
        states = model(**inputs, output_hidden_states=True).hidden_states[layer][0]  # (seq, hidden)
        vectors["xlco"].append(states[0] if projection is None else projection @ states[0])
        vectors["mean"].append(states.mean(dim=0))
    return vectors


# ---- a workspace for run_pretrain.py: tokenizer, config, monolingual and parallel text -----------------------------


def write_tiny_workspace(root: Path) -> Path:
    """`root/tokenizer`, `root/config` (the trainer tests' model, 32 usable positions), `root/mono/{en,fr}.txt`
    (60 lines each) and `root/parallel/tiny.en-fr.tsv` (40 pairs)."""
    tokenizer = build_tiny_tokenizer()
    tokenizer.save_pretrained(root / "tokenizer")
    # 34 positions: 32 usable (XLM-R's offset of 2).
    config = tiny_config(InfoXLMConfig, len(tokenizer), **{**TRAINER_MODEL, "max_position_embeddings": 34})
    config.save_pretrained(root / "config")
    english, french = WORDS[:20], WORDS[20:40]
    (root / "mono").mkdir()
    (root / "parallel").mkdir()
    for language, words in (("en", english), ("fr", french)):
        lines = [" ".join(words[(i + j) % len(words)] for j in range(3 + i % 5)) for i in range(60)]
        (root / "mono" / f"{language}.txt").write_text("\n".join(lines) + "\n")
    pairs = [
        (" ".join(english[(i + j) % 20] for j in range(4)), " ".join(french[(i + j) % 20] for j in range(4)))
        for i in range(40)
    ]
    (root / "parallel" / "tiny.en-fr.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    return root


def pretrain_flags(workspace: Path, output_dir: Path, *extra: str, drop: tuple[str, ...] = ()) -> list[str]:
    """run_pretrain.py flags for a two-update run of the tiny model in `workspace` (XLCO loss from the first update),
    less the flags in `drop`, then `extra` (a flag given twice: the last one counts)."""
    values = {
        "--config_name": str(workspace / "config"),
        "--tokenizer_name": str(workspace / "tokenizer"),
        "--mono_data": str(workspace / "mono"),
        "--parallel_data": str(workspace / "parallel"),
        "--data_cache_dir": str(workspace / "cache"),
        "--max_seq_length": "32",
        "--per_device_train_batch_size": "4",
        "--max_steps": "2",
        "--learning_rate": "1e-3",
        "--logging_steps": "1",
        "--save_strategy": "no",
        "--xlco_queue_fill": "masked",
        "--report_to": "none",
        "--disable_tqdm": "true",
        "--seed": "0",
        "--output_dir": str(output_dir),
    }
    return [item for name, value in values.items() if name not in drop for item in (name, value)] + list(extra)


# ---- the scripts as a user runs them ------------------------------------------------------------------------------

TIMEOUT = 600


def command_env(**extra) -> dict:
    # One thread per process: tiny models run faster, and two processes share the two CPUs without thrashing.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("INFOXLM_DEBUG", None)
    return {**env, **extra}


def run_command(command: list[str], cwd: Path = REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=cwd,
        env=command_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def pretrain(*arguments: str, **env) -> subprocess.CompletedProcess:
    return run_command([sys.executable, str(REPO / "run_pretrain.py"), *arguments], **env)


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 2, one `run_pretrain.py: error: ...` message, no traceback; returns the message."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-3000:])
    return errors[0]


def listing(folder: Path) -> dict:
    """Every path under `folder` with its size and modification time: what "left alone" compares."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")} if folder.exists() else {}


# ---- statistics of the collator tests -----------------------------------------------------------------------------


def random_sequences(tokenizer, count, length, generator):
    """`count` sequences `<s> w w ... </s>` of random regular words (ids above the specials)."""
    first_word = max(tokenizer.all_special_ids) + 1
    words = torch.randint(first_word, len(tokenizer), (count, length), generator=generator)
    return [[tokenizer.bos_token_id, *row.tolist(), tokenizer.eos_token_id] for row in words]


def within(observed, expected, n, sigmas=5.0):
    """|observed - expected| within `sigmas` binomial standard deviations of a rate over n draws."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)
