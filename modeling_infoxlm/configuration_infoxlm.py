"""InfoXLM configuration: the XLM-R architecture plus the cross-lingual contrast (XLCO) settings."""

import os

from huggingface_hub.dataclasses import strict
from transformers import XLMRobertaConfig

# Every model type whose config can initialise an InfoXLM model. The released InfoXLM checkpoints
# (microsoft/infoxlm-base, -large) are distributed as plain `xlm-roberta` checkpoints.
COMPATIBLE_MODEL_TYPES = ("infoxlm", "xlm-roberta")

# Written into every saved config so that `AutoModel*.from_pretrained(dir, trust_remote_code=True)`
# works for every head, not only the class that happened to be saved.
AUTO_MAP = {
    "AutoConfig": "configuration_infoxlm.InfoXLMConfig",
    "AutoModel": "modeling_infoxlm.InfoXLMModel",
    "AutoModelForMaskedLM": "modeling_infoxlm.InfoXLMForMaskedLM",
    "AutoModelForPreTraining": "modeling_infoxlm.InfoXLMForPreTraining",
    "AutoModelForSequenceClassification": "modeling_infoxlm.InfoXLMForSequenceClassification",
    "AutoModelForTokenClassification": "modeling_infoxlm.InfoXLMForTokenClassification",
    "AutoModelForQuestionAnswering": "modeling_infoxlm.InfoXLMForQuestionAnswering",
}


@strict
class InfoXLMConfig(XLMRobertaConfig):
    r"""
    Configuration of an InfoXLM model: every [`XLMRobertaConfig`] field (so XLM-R checkpoints load unchanged) plus
    the settings of the cross-lingual contrast (XLCO) task.

    Args:
        xlco_layer (`int`, *optional*):
            1-based index of the encoder layer whose `<s>` hidden state is the sentence vector. Defaults to two thirds
            of the depth (8 of 12 layers for base, as in the paper). Must satisfy `1 <= xlco_layer <= num_hidden_layers`.
        xlco_use_projection (`bool`, defaults to `True`):
            Pass the sentence vector through a shared bias-free linear projection (the reference's `--use_proj`).
        xlco_projection_size (`int`, *optional*):
            Output size of that projection; defaults to `hidden_size` (a square matrix, as in the reference).
        xlco_temperature (`float`, defaults to 0.25):
            Logits of the contrastive loss are raw dot products divided by this temperature.
        xlco_queue_size (`int`, defaults to 131072):
            Number of negative keys held in the queue.
        xlco_momentum (`float`, defaults to 0.9999):
            Momentum of the key encoder's moving average (0.9999 base, 0.999 large in the paper).

    Example:

    ```python
    >>> from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
    >>> config = InfoXLMConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
    ...                        intermediate_size=128, xlco_layer=2)
    >>> model = InfoXLMForPreTraining(config)
    ```"""

    model_type = "infoxlm"

    xlco_layer: int | None = None
    xlco_use_projection: bool = True
    xlco_projection_size: int | None = None
    xlco_temperature: float | int = 0.25
    xlco_queue_size: int = 131072
    xlco_momentum: float | int = 0.9999

    def __post_init__(self, **kwargs):
        if self.xlco_layer is None:
            self.xlco_layer = max(1, round(self.num_hidden_layers * 2 / 3))
        if self.xlco_projection_size is None:
            self.xlco_projection_size = self.hidden_size
        # A plain ValueError here (the `@strict` validator wraps what it raises in its own error type).
        self.validate_xlco()
        if getattr(self, "auto_map", None) is None:
            kwargs.setdefault("auto_map", dict(AUTO_MAP))
        super().__post_init__(**kwargs)

    def validate_xlco(self):
        """Part of `@strict` validation: every XLCO field names itself and its allowed range when it is out of it.
        `from_pretrained`/`from_dict` call it again after their keyword overrides, which bypass `__post_init__`."""
        if not 1 <= self.xlco_layer <= self.num_hidden_layers:
            raise ValueError(
                f"xlco_layer={self.xlco_layer} is out of range: it must satisfy "
                f"1 <= xlco_layer <= num_hidden_layers ({self.num_hidden_layers})."
            )
        if self.xlco_projection_size < 1:
            raise ValueError(f"xlco_projection_size={self.xlco_projection_size} is out of range: it must be >= 1.")
        if not self.xlco_temperature > 0:
            raise ValueError(
                f"xlco_temperature={self.xlco_temperature} is out of range: it must be > 0 (the paper uses 0.25)."
            )
        if self.xlco_queue_size < 1:
            raise ValueError(
                f"xlco_queue_size={self.xlco_queue_size} is out of range: it must be >= 1 (the paper uses 131072)."
            )
        if not 0.0 <= self.xlco_momentum <= 1.0:
            raise ValueError(f"xlco_momentum={self.xlco_momentum} is out of range: it must lie in [0, 1].")

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """`PreTrainedConfig.from_dict`, then the XLCO checks on the result: keyword arguments (such as
        `from_pretrained(path, xlco_layer=99)`) are set after `__post_init__` has validated the stored fields."""
        result = super().from_dict(config_dict, **kwargs)
        config = result[0] if isinstance(result, tuple) else result
        config.validate_xlco()
        return result

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        """Reads a config and accepts `xlm-roberta` ones as InfoXLM (same architecture, XLCO fields at defaults)."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        model_type = config_dict.get("model_type")
        if model_type not in COMPATIBLE_MODEL_TYPES:
            raise ValueError(
                f"Unsupported model_type {model_type!r} in the config of {pretrained_model_name_or_path}: InfoXLM "
                f"initialises from checkpoints whose model_type is one of {COMPATIBLE_MODEL_TYPES}."
            )
        if model_type != cls.model_type:
            config_dict = {**config_dict, "model_type": cls.model_type}
            config_dict.pop("auto_map", None)
        return config_dict, kwargs


# Model types whose position ids start after the padding index (fairseq's RoBERTa convention): XLM-R's
# max_position_embeddings of 514 holds 512 tokens.
PADDING_OFFSET_MODEL_TYPES = ("infoxlm", "xlm-roberta", "roberta", "camembert", "xlm-roberta-xl")


def usable_positions(config) -> int | None:
    """How many tokens one sequence of this model may hold (None if the config does not say)."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    if getattr(config, "model_type", None) in PADDING_OFFSET_MODEL_TYPES:
        pad = getattr(config, "pad_token_id", None)
        positions -= (pad if pad is not None else 1) + 1
    return positions


__all__ = ["InfoXLMConfig", "usable_positions"]
