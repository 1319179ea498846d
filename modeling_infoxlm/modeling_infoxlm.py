"""InfoXLM models: the XLM-R encoder and heads, plus the XLCO sentence vector and a masked-positions-only MLM head.

The encoder is `transformers`' XLM-R implementation, reused as is, so parameter names (`roberta.*`, `lm_head.*`,
`classifier.*`) are exactly XLM-R's: XLM-R and microsoft/infoxlm-* checkpoints load without renaming, and an InfoXLM
model exports back to a plain `xlm-roberta` checkpoint by dropping the XLCO projection.
"""

import inspect
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import XLMRobertaConfig
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import MaskedLMOutput, ModelOutput
from transformers.models.xlm_roberta import modeling_xlm_roberta as xlmr

from .configuration_infoxlm import InfoXLMConfig

# Newer transformers (5.15 has it, 5.10 not) let a caller keep the mask of an unpadded batch (no `attention_mask.all()`
# host read); older releases always drop it after that read. The mask's values are the same either way: only the host
# sync differs.
_MASK_SKIP_IS_OPTIONAL = "allow_is_bidirectional_skip" in inspect.signature(create_bidirectional_mask).parameters


class InfoXLMPreTrainedModel(xlmr.XLMRobertaPreTrainedModel):
    """Base class: InfoXLM config, XLM-R weight names (`base_model_prefix = "roberta"`) and initialisation."""

    config_class = InfoXLMConfig
    config: InfoXLMConfig

    @classmethod
    def from_pretrained(
        cls, *args, ignore_mismatched_sizes: bool = False, output_loading_info: bool = False, **kwargs
    ):
        """`PreTrainedModel.from_pretrained`, but a checkpoint whose tensor shapes differ from the config raises a
        `ValueError` that names each tensor and both shapes (transformers only logs them)."""
        model, info = super().from_pretrained(*args, ignore_mismatched_sizes=True, output_loading_info=True, **kwargs)
        if info["mismatched_keys"] and not ignore_mismatched_sizes:
            details = "; ".join(
                f"{name}: checkpoint {tuple(saved)} vs model {tuple(expected)}"
                for name, saved, expected in sorted(info["mismatched_keys"])
            )
            raise ValueError(
                f"The checkpoint {args[0] if args else kwargs.get('pretrained_model_name_or_path')} does not match "
                f"the config's shapes: {details}. Fix the config (or pass ignore_mismatched_sizes=True to "
                "re-initialise those tensors)."
            )
        return (model, info) if output_loading_info else model

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *args,
        as_xlm_roberta: bool = False,
        as_sentence_transformer: bool = False,
        tokenizer=None,
        pooling: str | None = None,
        layer: int | None = None,
        **kwargs,
    ):
        """
        Saves the model (transformers v5 writes safetensors only). With `as_xlm_roberta=True` the directory instead
        holds a plain `xlm-roberta` checkpoint (no custom code, no XLCO projection) that `transformers.AutoModel`
        loads directly, the way microsoft/infoxlm-base is distributed.

        With `as_sentence_transformer=True` (and the model's `tokenizer`), it holds a sentence-transformers folder
        that `SentenceTransformer(dir)` loads without custom code (see `modeling_infoxlm.sentence_transformer`):
        by default the XLCO vector (`pooling="cls"`: `<s>` of layer `xlco_layer` through the projection, exactly
        `sentence_vector`), or `pooling="mean"` (mean of layer `layer`, the default for a model without projection).
        The projection is exported as the model holds it: one just loaded from an XLM-R checkpoint has a random one,
        so export it with `pooling="mean"` (the export CLI detects a projection missing from a checkpoint).
        """
        if as_sentence_transformer:
            from .sentence_transformer import export_sentence_transformer

            projection = getattr(self, "xlco_proj", None)
            pooling = pooling or ("cls" if projection is not None else "mean")
            return export_sentence_transformer(
                self.base_model,
                self.config,
                tokenizer,
                save_directory,
                layer=layer,
                pooling=pooling,
                projection=projection.weight if projection is not None and pooling == "cls" else None,
                source=self.config.name_or_path or type(self).__name__,
            )
        if as_xlm_roberta:
            return export_as_xlm_roberta(self, save_directory, *args, **kwargs)
        return super().save_pretrained(save_directory, *args, **kwargs)


class InfoXLMModel(xlmr.XLMRobertaModel, InfoXLMPreTrainedModel):
    """
    The bare InfoXLM encoder: identical to `XLMRobertaModel`, plus `hidden_states_at_layer`, which stops after a given
    layer (the XLCO sentence vector needs only the layers up to `config.xlco_layer`).
    """

    config_class = InfoXLMConfig

    def hidden_states_at_layer(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None,
        layer: int,
        skip_unpadded_mask: bool = False,
    ) -> torch.Tensor:
        """
        Runs the embeddings and the first `layer` encoder layers only.

        Args:
            input_ids: `(batch, seq)` token ids.
            attention_mask: `(batch, seq)`, 1 for tokens and 0 for padding, or `None`.
            layer: 1-based index of the last layer to run (0 returns the embedding output).
            skip_unpadded_mask: drop the mask when nothing is padded, as `XLMRobertaModel.forward` does (SDPA can
                then use its fastest kernel), at the price of reading `attention_mask.all()` on the host, which
                waits for the device. Off by default: sentence batches (XLCO, TLM pairs) are nearly always padded,
                so the read would buy nothing.

        Returns:
            `(batch, seq, hidden)`: the output of layer `layer`, equal to `hidden_states[layer]` of a full forward.
        """
        if not 0 <= layer <= len(self.encoder.layer):
            raise ValueError(f"layer={layer} is out of range for a {len(self.encoder.layer)}-layer encoder.")
        hidden = self.embeddings(input_ids=input_ids)
        skip = {"allow_is_bidirectional_skip": skip_unpadded_mask} if _MASK_SKIP_IS_OPTIONAL else {}
        mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden, attention_mask=attention_mask, **skip
        )
        for block in self.encoder.layer[:layer]:
            hidden = block(hidden, mask)
        return hidden


def masked_lm_logits_and_loss(
    lm_head: nn.Module,
    sequence_output: torch.Tensor,
    labels: torch.LongTensor | None,
    masked_tokens: torch.BoolTensor | None,
    loss_reduction: str = "mean",
    masked_positions: torch.LongTensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """
    Applies the MLM head, either everywhere or only where `masked_tokens` is set (fairseq's `masked_tokens`): at a
    250k vocabulary the full head is most of the forward cost, and only masked positions contribute to the loss.

    Args:
        sequence_output: `(batch, seq, hidden)`.
        labels: `(batch, seq)` target ids, -100 where no loss is taken; or `None`.
        masked_tokens: `(batch, seq)` booleans, or `None` for logits at every position.
        loss_reduction: `"mean"` or `"sum"` of the cross-entropy over labelled positions (fairseq sums, then
            divides the update's gradient by the number of masked tokens; see `InfoXLMTrainer`).
        masked_positions: instead of `masked_tokens`, the same positions as flat indices into `(batch * seq)`
            (`masked_tokens.flatten().nonzero()`), computed on the host by the collator: selecting by a boolean mask
            sizes the output from the mask's values, so on a GPU the host waits for the device; by indices it does
            not. Same rows in the same order.

    Returns:
        logits `(batch, seq, vocab)`, or `(num_masked, vocab)` in the order of `masked_tokens.nonzero()`; and the
        cross-entropy over labelled positions, reduced by `loss_reduction` (or `None` without labels).
    """
    if masked_positions is not None:
        positions = masked_positions.to(sequence_output.device)
        logits = lm_head(sequence_output.flatten(0, 1).index_select(0, positions))
        targets = None if labels is None else labels.flatten().index_select(0, positions.to(labels.device))
    elif masked_tokens is not None:
        logits = lm_head(sequence_output[masked_tokens])
        targets = None if labels is None else labels[masked_tokens]
    else:
        logits = lm_head(sequence_output)
        targets = labels
    loss = None
    if targets is not None:
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1).to(logits.device), reduction=loss_reduction
        )
    return logits, loss


class InfoXLMForMaskedLM(InfoXLMPreTrainedModel):
    """InfoXLM with XLM-R's MLM head; `masked_tokens` restricts the vocabulary projection to masked positions."""

    _tied_weights_keys = {
        "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }

    def __init__(self, config: InfoXLMConfig):
        super().__init__(config)
        self.lm_head = xlmr.XLMRobertaLMHead(config)
        self.roberta = InfoXLMModel(config, add_pooling_layer=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        masked_tokens: torch.BoolTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        r"""
        labels (`(batch, seq)`, *optional*): target ids at masked positions, -100 elsewhere.
        masked_tokens (`(batch, seq)` bool, *optional*): compute logits only there; `logits` is then
            `(num_masked, vocab)`. Pass `labels.ne(-100)` in training.
        """
        outputs = self.roberta(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits, loss = masked_lm_logits_and_loss(self.lm_head, outputs.last_hidden_state, labels, masked_tokens)
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


@dataclass
class InfoXLMForPreTrainingOutput(ModelOutput):
    """
    Output of one pretraining forward over up to three batches.

    loss: `mlm_loss + tlm_loss` (unweighted; the trainer applies the objectives' weights and adds the XLCO loss).
    mlm_loss / tlm_loss: cross-entropy over the masked positions of the MLM / TLM batch, mean or sum
        (`loss_reduction`).
    logits: MLM logits, `(num_masked, vocab)` when `masked_tokens` was given, else `(batch, seq, vocab)`.
    sentence_vectors: `(xlco_batch, xlco_projection_size)` XLCO query vectors of `xlco_input_ids`.
    """

    loss: torch.FloatTensor | None = None
    mlm_loss: torch.FloatTensor | None = None
    tlm_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    sentence_vectors: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class InfoXLMForPreTraining(InfoXLMForMaskedLM):
    """
    Encoder + MLM head + the shared bias-free XLCO projection.

    `forward` takes the MLM batch (`input_ids`, ...), the TLM batch (`tlm_*`) and the XLCO query batch (`xlco_*`),
    any subset, in one call: under DistributedDataParallel one training step must be one forward of the wrapped model.
    The XLCO pass stops at `config.xlco_layer` (the layers above it would receive no XLCO gradient).
    """

    def __init__(self, config: InfoXLMConfig):
        # Built here rather than through `InfoXLMForMaskedLM.__init__` so that weights are initialised once.
        InfoXLMPreTrainedModel.__init__(self, config)
        self.lm_head = xlmr.XLMRobertaLMHead(config)
        self.roberta = InfoXLMModel(config, add_pooling_layer=False)
        self.xlco_proj = (
            nn.Linear(config.hidden_size, config.xlco_projection_size, bias=False)
            if config.xlco_use_projection
            else None
        )
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        masked_tokens: torch.BoolTensor | None = None,
        tlm_input_ids: torch.LongTensor | None = None,
        tlm_attention_mask: torch.Tensor | None = None,
        tlm_labels: torch.LongTensor | None = None,
        xlco_input_ids: torch.LongTensor | None = None,
        xlco_attention_mask: torch.Tensor | None = None,
        loss_reduction: str = "mean",
        masked_positions: torch.LongTensor | None = None,
        tlm_masked_positions: torch.LongTensor | None = None,
        **kwargs,
    ) -> InfoXLMForPreTrainingOutput:
        r"""
        input_ids, attention_mask, labels, masked_tokens: the MLM batch, `(batch, seq)` each, as in
            [`InfoXLMForMaskedLM`].
        tlm_input_ids, tlm_attention_mask, tlm_labels: the TLM batch, `(tlm_batch, tlm_seq)`; logits are computed at
            its labelled positions only.
        xlco_input_ids, xlco_attention_mask: the XLCO query batch, `(xlco_batch, xlco_seq)`.
        loss_reduction: `"mean"` (default) or `"sum"` over masked positions, for `mlm_loss` and `tlm_loss`.
        masked_positions, tlm_masked_positions: the labelled positions of the MLM / TLM batch as flat indices
            (see `masked_lm_logits_and_loss`), from `InfoXLMDataCollator`; without them, `labels.ne(-100)`.
        """
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}.")
        output = InfoXLMForPreTrainingOutput()
        if input_ids is not None or kwargs.get("inputs_embeds") is not None:
            outputs = self.roberta(input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)
            output.logits, output.mlm_loss = masked_lm_logits_and_loss(
                self.lm_head, outputs.last_hidden_state, labels, masked_tokens, loss_reduction, masked_positions
            )
            output.hidden_states, output.attentions = outputs.hidden_states, outputs.attentions
        if tlm_input_ids is not None:
            # The full encoder, with the padding mask always built: TLM pairs are padded, so checking first whether
            # the mask could be dropped (a host read) would buy nothing.
            hidden = self.roberta.hidden_states_at_layer(
                tlm_input_ids, tlm_attention_mask, self.config.num_hidden_layers
            )
            masked = None
            if tlm_labels is not None and tlm_masked_positions is None:
                masked = tlm_labels.ne(-100)
            _, output.tlm_loss = masked_lm_logits_and_loss(
                self.lm_head, hidden, tlm_labels, masked, loss_reduction, tlm_masked_positions
            )
        if xlco_input_ids is not None:
            output.sentence_vectors = self.sentence_vector(xlco_input_ids, xlco_attention_mask)
        losses = [loss for loss in (output.mlm_loss, output.tlm_loss) if loss is not None]
        output.loss = sum(losses) if losses else None
        return output

    def sentence_vector(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        The XLCO sentence vector: the `<s>` hidden state at layer `config.xlco_layer`, through the projection if any.

        Args:
            input_ids: `(batch, seq)`, each row starting with `<s>`.
            attention_mask: `(batch, seq)` or `None`.

        Returns:
            `(batch, xlco_projection_size)` (or `(batch, hidden)` without projection); not normalised.
        """
        return xlco_sentence_vector(self.roberta, self.xlco_proj, input_ids, attention_mask, self.config.xlco_layer)


def xlco_sentence_vector(
    encoder: InfoXLMModel,
    projection: nn.Linear | None,
    input_ids: torch.LongTensor,
    attention_mask: torch.Tensor | None,
    layer: int,
) -> torch.Tensor:
    """`<s>` state of `layer` through `projection`; shared by the query model and the trainer's key encoder."""
    cls_state = encoder.hidden_states_at_layer(input_ids, attention_mask, layer)[:, 0]
    return cls_state if projection is None else projection(cls_state)


class InfoXLMForSequenceClassification(xlmr.XLMRobertaForSequenceClassification, InfoXLMPreTrainedModel):
    """XLM-R's sequence classification head (`<s>` → dense → tanh → out_proj) on the InfoXLM encoder."""

    config_class = InfoXLMConfig


class InfoXLMForTokenClassification(xlmr.XLMRobertaForTokenClassification, InfoXLMPreTrainedModel):
    """XLM-R's token classification head (NER, POS: XTREME) on the InfoXLM encoder."""

    config_class = InfoXLMConfig


class InfoXLMForQuestionAnswering(xlmr.XLMRobertaForQuestionAnswering, InfoXLMPreTrainedModel):
    """XLM-R's extractive QA head (MLQA, XQuAD: XTREME) on the InfoXLM encoder."""

    config_class = InfoXLMConfig


# InfoXLM class → the `transformers` class that holds the same weights under the same names.
XLM_ROBERTA_EQUIVALENT = {
    "InfoXLMModel": "XLMRobertaModel",
    "InfoXLMForMaskedLM": "XLMRobertaForMaskedLM",
    "InfoXLMForPreTraining": "XLMRobertaForMaskedLM",
    "InfoXLMForSequenceClassification": "XLMRobertaForSequenceClassification",
    "InfoXLMForTokenClassification": "XLMRobertaForTokenClassification",
    "InfoXLMForQuestionAnswering": "XLMRobertaForQuestionAnswering",
}


def export_as_xlm_roberta(model: InfoXLMPreTrainedModel, save_directory: str | os.PathLike, **kwargs) -> None:
    """
    Writes `model` as a plain `xlm-roberta` checkpoint (config without XLCO fields or `auto_map`, safetensors
    weights without the XLCO projection), loadable by `transformers.AutoModel*` with no custom code.
    Every other weight must be taken by the XLM-R class; a leftover or missing one raises instead of being dropped.
    """
    target_class = getattr(xlmr, XLM_ROBERTA_EQUIVALENT[type(model).__name__])
    fields = model.config.to_dict()
    for key in ("model_type", "auto_map", "architectures", "transformers_version"):
        fields.pop(key, None)
    fields = {key: value for key, value in fields.items() if not key.startswith("xlco_")}
    config = XLMRobertaConfig(**fields)
    config.architectures = [target_class.__name__]

    state = {name: tensor for name, tensor in model.state_dict().items() if not name.startswith("xlco_proj.")}
    with torch.device("meta"):
        exported = target_class(config)
    missing, unexpected = exported.load_state_dict(state, strict=False, assign=True)
    # Tied decoder weights are rebuilt by `tie_weights`; anything else left over is a real mismatch.
    missing = [name for name in missing if name not in (target_class._tied_weights_keys or {})]
    if missing or unexpected:
        raise ValueError(
            f"Cannot export {type(model).__name__} as {target_class.__name__}: "
            f"missing {sorted(missing)}, unexpected {sorted(unexpected)}."
        )
    exported.tie_weights()
    exported.save_pretrained(save_directory, **kwargs)


__all__ = [
    "InfoXLMPreTrainedModel",
    "InfoXLMModel",
    "InfoXLMForMaskedLM",
    "InfoXLMForPreTraining",
    "InfoXLMForPreTrainingOutput",
    "InfoXLMForSequenceClassification",
    "InfoXLMForTokenClassification",
    "InfoXLMForQuestionAnswering",
    "export_as_xlm_roberta",
    "masked_lm_logits_and_loss",
    "xlco_sentence_vector",
]
