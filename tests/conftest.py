"""Shared fixtures: a tiny offline tokenizer and the location of ../shared/data."""

import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from trainer.data import SPECIAL_TOKENS, xlmr_style_tokenizer  # XLM-R's ids 0..3; <mask> is 4

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
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


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny models run far faster on one thread, and do not slow to a crawl when other processes share the CPUs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return build_tiny_tokenizer()


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the checkout; tests that need it skip when it is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (it sits beside the checkout in CI); this test needs the shared corpora")
    return SHARED_DATA


# ---- XNLI (run_xnli.py) -----------------------------------------------------------------------------------------

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


def tiny_encoder_config(config_class, vocab_size: int, **overrides):
    """Hidden 32, 2 layers, 2 heads: fast enough for end-to-end runs on CPU."""
    return config_class(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        **overrides,
    )


def save_tiny_checkpoint(kind: str, directory: Path, tokenizer) -> Path:
    """
    A randomly initialised pretraining checkpoint with its tokenizer: `xlm-roberta` (XLMRobertaForMaskedLM, like
    xlm-roberta-base), `bert` (BertForMaskedLM, like mBERT) or `infoxlm` (InfoXLMForPreTraining, the format
    run_pretrain.py writes).
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

    from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining

    torch.manual_seed(0)
    if kind == "xlm-roberta":
        model = XLMRobertaForMaskedLM(tiny_encoder_config(XLMRobertaConfig, len(tokenizer)))
    elif kind == "bert":
        model = BertForMaskedLM(tiny_encoder_config(BertConfig, len(tokenizer), pad_token_id=1))
    else:
        config = tiny_encoder_config(InfoXLMConfig, len(tokenizer), xlco_layer=1, xlco_queue_size=64)
        model = InfoXLMForPreTraining(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_xnli_dir(tmp_path_factory) -> Path:
    return write_tiny_xnli(tmp_path_factory.mktemp("tiny_xnli"))


@pytest.fixture(scope="session", params=["infoxlm", "xlm-roberta", "bert"])
def tiny_xnli_checkpoint(request, tmp_path_factory) -> Path:
    """Each test using it runs once per checkpoint format."""
    return save_tiny_checkpoint(request.param, tmp_path_factory.mktemp(request.param), build_tiny_tokenizer())


@pytest.fixture(scope="session")
def tiny_infoxlm_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint("infoxlm", tmp_path_factory.mktemp("infoxlm"), build_tiny_tokenizer())
