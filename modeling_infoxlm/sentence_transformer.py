"""
Export as a sentence encoder: a folder that `sentence_transformers.SentenceTransformer(folder)` loads without custom
code and that encodes exactly the vector XLCO trained.

The folder is built from sentence-transformers' own modules (written by its own `save`, so its layout is the one the
installed sentence-transformers reads):

0. `Transformer`: a plain `xlm-roberta` encoder truncated to `layer` layers (`config.xlco_layer` by default), so its
   last hidden state is the state XLCO reads; the layers above are not saved.
1. `Pooling`: `cls` (the `<s>` state, what XLCO trains) or `mean` (the average over the sentence's tokens, padding
   excluded: XTREME's Tatoeba setting, for models without a trained projection).
2. `Dense` (only for `cls` with a trained projection): bias-free, identity activation, holding `xlco_proj.weight`.
   `InfoXLMForPreTraining.xlco_proj` is an `nn.Linear` like `Dense.linear`, both computing `x @ W.T` with `W` of
   shape `(out, in)`, so the weight is copied as is. (The reference's `h @ P` keeps `P` as `(in, out)`: a weight
   taken from a fairseq checkpoint is `P.T` here.)

The vectors are not normalised (neither is XLCO's: its logits are raw dot products unless `xlco_normalize`); the
folder says `similarity_fn_name: cosine`, the retrieval convention of `run_retrieval.py`.

sentence-transformers is imported only when exporting (it is in the `dev` and `sentence-transformers` extras), so
this module stays importable, and the `trust_remote_code` copy of the model code loads, without it.
"""

import os
import tempfile
from pathlib import Path

import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from .configuration_infoxlm import usable_positions

POOLING_MODES = ("cls", "mean")
PROJECTION_WEIGHT = "xlco_proj.weight"


def _sentence_transformers_modules():
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer
    except ImportError as error:  # inside `try`: transformers' remote-code import check skips it
        raise ImportError(
            f"Exporting a sentence encoder needs sentence-transformers ({error}): pip install sentence-transformers"
        ) from None
    return SentenceTransformer, Transformer, Pooling, Dense


def truncated_xlm_roberta(encoder: torch.nn.Module, config, layer: int) -> XLMRobertaModel:
    """
    A plain `XLMRobertaModel` holding the embeddings and the first `layer` layers of `encoder` (an `InfoXLMModel` or
    `XLMRobertaModel`): its `last_hidden_state` is the encoder's `hidden_states[layer]`.
    """
    if not 1 <= layer <= config.num_hidden_layers:
        raise ValueError(f"layer={layer} is out of range for a {config.num_hidden_layers}-layer encoder: pass 1..")
    fields = config.to_dict()
    for key in ("model_type", "auto_map", "architectures", "transformers_version"):
        fields.pop(key, None)
    fields = {key: value for key, value in fields.items() if not key.startswith("xlco_")}
    fields["num_hidden_layers"] = layer
    truncated_config = XLMRobertaConfig(**fields)
    truncated_config.architectures = ["XLMRobertaModel"]
    state = {
        name: tensor
        for name, tensor in encoder.state_dict().items()
        if not name.startswith("encoder.layer.") or int(name.split(".")[2]) < layer
    }
    # `AutoModel` builds an `xlm-roberta` model with its pooler, which sentence-transformers never runs (it pools
    # `last_hidden_state` itself). A folder without pooler weights would make every load print a "newly
    # initialised" report, so the pooler is saved: the source's if it has one, else zeros (deterministic, unused).
    model = XLMRobertaModel(truncated_config, add_pooling_layer=True)
    if not any(name.startswith("pooler.") for name in state):
        state.update(
            {f"pooler.{name}": torch.zeros_like(tensor) for name, tensor in model.pooler.state_dict().items()}
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"Cannot truncate the encoder: missing {sorted(missing)}, unexpected {sorted(unexpected)}.")
    return model.eval()


def model_card(
    layer: int, num_layers: int, pooling: str, projection: torch.Tensor | None, source: str, xlco_layer=None
) -> str:
    """What the vector is, and the three lines that use it."""
    if pooling == "cls":
        vector = f"the `<s>` state of layer {layer} of {num_layers}" + (
            f", through the bias-free XLCO projection ({projection.shape[1]} → {projection.shape[0]})"
            if projection is not None
            else " (no trained projection applied)"
        )
        if projection is not None and layer == xlco_layer:
            vector += (
                ": exactly `InfoXLMForPreTraining.sentence_vector`, the vector InfoXLM's cross-lingual contrast "
                "(XLCO) trained"
            )
    else:
        vector = (
            f"the mean of the states of layer {layer} of {num_layers} over the sentence's tokens (`<s>` and `</s>` "
            "included, padding excluded): XTREME's Tatoeba/BUCC setting"
        )
    return "\n".join(
        [
            "---",
            "library_name: sentence-transformers",
            "pipeline_tag: sentence-similarity",
            "tags:",
            "- sentence-transformers",
            "- infoxlm",
            "- xlm-roberta",
            "- cross-lingual",
            "---",
            "",
            "# Cross-lingual sentence encoder",
            "",
            f"Exported from `{source}` by the `infoxlm` package. A sentence's vector is {vector}. The encoder is a "
            f"plain `xlm-roberta` model cut after layer {layer} (the layers above do not change this vector). "
            "Vectors are not normalised; compare them by cosine similarity.",
            "",
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "",
            'model = SentenceTransformer("<this folder or repo>")',
            'vectors = model.encode(["Hello world", "Bonjour le monde"])',
            "```",
            "",
        ]
    )


def export_sentence_transformer(
    encoder: torch.nn.Module,
    config,
    tokenizer,
    save_directory: str | os.PathLike,
    *,
    layer: int | None = None,
    pooling: str = "cls",
    projection: torch.Tensor | None = None,
    source: str = "an InfoXLM model",
) -> None:
    """
    Writes a sentence-transformers folder (see the module docstring).

    Args:
        encoder: the `InfoXLMModel` / `XLMRobertaModel` whose states are pooled.
        config: its config (`xlco_layer` is the default `layer` when present, else 2/3 of the depth).
        tokenizer: the model's tokenizer, saved with the encoder.
        layer: the encoder layer whose states are pooled (1-based).
        pooling: "cls" or "mean".
        projection: the XLCO projection's weight `(out, in)` applied after `cls` pooling, or None.
    """
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling={pooling!r}: expected one of {POOLING_MODES}.")
    if projection is not None and pooling != "cls":
        raise ValueError("The XLCO projection applies to the `<s>` state: use pooling='cls', or no projection.")
    if tokenizer is None:
        raise ValueError("A sentence encoder needs its tokenizer: pass tokenizer=... (the model's own).")
    SentenceTransformer, Transformer, Pooling, Dense = _sentence_transformers_modules()
    if layer is None:
        layer = getattr(config, "xlco_layer", None) or max(1, round(2 * config.num_hidden_layers / 3))
    encoder_only = truncated_xlm_roberta(encoder, config, layer)
    with tempfile.TemporaryDirectory() as staging:
        # sentence-transformers builds its Transformer module from a folder: stage the plain encoder there.
        encoder_only.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        max_seq_length = min(usable_positions(config), tokenizer.model_max_length)
        modules = [Transformer(staging, max_seq_length=max_seq_length)]
        modules.append(Pooling(config.hidden_size, pooling_mode=pooling))
        if projection is not None:
            out_features, in_features = projection.shape
            modules.append(
                Dense(
                    in_features,
                    out_features,
                    bias=False,
                    activation_function=torch.nn.Identity(),
                    init_weight=projection.detach().clone().float(),
                )
            )
        model = SentenceTransformer(modules=modules, device="cpu", similarity_fn_name="cosine")
        model.save(str(save_directory))
    Path(save_directory, "README.md").write_text(
        model_card(layer, config.num_hidden_layers, pooling, projection, source, getattr(config, "xlco_layer", None)),
        encoding="utf-8",
    )
