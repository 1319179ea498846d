"""
Sentence retrieval with an encoder's sentence vectors: pooling one layer's states into a vector (the XLCO vector or
mean pooling), encoding sentences in batches, scoring candidates by cosine or ratio margin (evaluation/mining.py), and
nearest-neighbour accuracy, per language pair (the training callback) or per Tatoeba language and direction
(run_retrieval.py); and loading any checkpoint (InfoXLM or plain `xlm-roberta`) for it, checked before any model
work.
"""

import os
from collections.abc import Sequence

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from infoxlm_cli import ConfigError, check_tokenizer_folder, load_pretrained
from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining

from .metrics import accuracy
from .mining import MARGIN_K, best_by_margin

# "xlco": the `<s>` state through the XLCO projection when the model has one (what the contrastive loss sees);
# "mean": the average state over the tokens of the sentence (special tokens included, padding excluded).
POOLINGS = ("xlco", "mean")
# "cosine": the nearest neighbour by cosine similarity; "margin": the best ratio margin among the k nearest
# neighbours (evaluation/mining.py; LASER and XTREME's BUCC). A "method" is a pooling with a scoring: "mean" is mean
# pooling scored by cosine (the names of earlier reports), "mean/margin" the same vectors scored by margin.
SCORINGS = ("cosine", "margin")
DIRECTIONS = ("xx->en", "en->xx")
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


# A checkpoint folder is what `save_pretrained` writes: what to pass instead of a missing or wrong one.
CHECKPOINT_FIX = (
    "Pass a folder written by save_pretrained (config.json + weights), e.g. outputs/<run>/model, or a Hub model id."
)


def load_retrieval_config(name_or_path: str, option: str = "--model_name_or_path") -> InfoXLMConfig:
    """The checkpoint's config as InfoXLM's (an `xlm-roberta` one gets the XLCO defaults: xlco_layer = 2/3 depth); a
    file, a missing folder, a folder without config.json or an unreadable config raises ConfigError."""
    if os.path.isfile(name_or_path):
        raise ConfigError(
            f"{option} {name_or_path}: a file, not a model folder ({os.path.abspath(name_or_path)}). {CHECKPOINT_FIX}"
        )
    if os.path.isdir(name_or_path) and not os.path.isfile(os.path.join(name_or_path, "config.json")):
        raise ConfigError(f"{option} {name_or_path}: no config.json in that folder. {CHECKPOINT_FIX}")
    return load_pretrained(lambda: InfoXLMConfig.from_pretrained(name_or_path), name_or_path, option, CHECKPOINT_FIX)


def load_retrieval_tokenizer(
    tokenizer_name: str | None, model_name_or_path: str, config: InfoXLMConfig
) -> PreTrainedTokenizerBase:
    """The model's tokenizer (`tokenizer_name`, else the checkpoint's); a missing one, one of special tokens only or
    one larger than the model's vocabulary raises ConfigError."""
    source = tokenizer_name or model_name_or_path
    option = "--tokenizer_name" if tokenizer_name else "--model_name_or_path"
    check_tokenizer_folder(source, option)
    tokenizer = load_pretrained(lambda: AutoTokenizer.from_pretrained(source), source, option)
    # transformers builds a tokenizer of special tokens only from a folder without tokenizer files: every word
    # would become <unk>, and every score chance.
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        raise ConfigError(
            f"{option} {source}: no tokenizer files there (only special tokens were found). Pass --tokenizer_name "
            "with the model's tokenizer."
        )
    if len(tokenizer) > config.vocab_size:
        raise ConfigError(
            f"{option} {source}: {len(tokenizer):,} tokens but the model's vocab_size is {config.vocab_size:,}, so "
            "some ids have no embedding. Use the model's own tokenizer."
        )
    return tokenizer


def check_layer(layer: int | None, config: InfoXLMConfig) -> int:
    """`--layer` (None: the config's xlco_layer) if the encoder has it; else a ConfigError."""
    layer = config.xlco_layer if layer is None else layer
    if not 0 <= layer <= config.num_hidden_layers:
        raise ConfigError(
            f"--layer {layer}: out of range for a {config.num_hidden_layers}-layer encoder. Pass 0.."
            f"{config.num_hidden_layers} (0: the embedding output), or leave it out for xlco_layer "
            f"({config.xlco_layer})."
        )
    return layer


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
