"""InfoXLM for 🤗 Transformers. Importing this package registers the `infoxlm` model type with the Auto classes."""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_infoxlm import InfoXLMConfig, usable_positions
from .modeling_infoxlm import (
    InfoXLMForMaskedLM,
    InfoXLMForPreTraining,
    InfoXLMForPreTrainingOutput,
    InfoXLMForQuestionAnswering,
    InfoXLMForSequenceClassification,
    InfoXLMForTokenClassification,
    InfoXLMModel,
    InfoXLMPreTrainedModel,
    export_as_xlm_roberta,
    masked_lm_logits_and_loss,
    xlco_sentence_vector,
)

AUTO_CLASSES = {
    AutoModel: InfoXLMModel,
    AutoModelForMaskedLM: InfoXLMForMaskedLM,
    AutoModelForPreTraining: InfoXLMForPreTraining,
    AutoModelForSequenceClassification: InfoXLMForSequenceClassification,
    AutoModelForTokenClassification: InfoXLMForTokenClassification,
    AutoModelForQuestionAnswering: InfoXLMForQuestionAnswering,
}

AutoConfig.register(InfoXLMConfig.model_type, InfoXLMConfig, exist_ok=True)
InfoXLMConfig.register_for_auto_class()
for auto_class, model_class in AUTO_CLASSES.items():
    auto_class.register(InfoXLMConfig, model_class, exist_ok=True)
    # `save_pretrained` / `push_to_hub` then copy this package's code next to the weights.
    model_class.register_for_auto_class(auto_class.__name__)

__all__ = [
    "InfoXLMConfig",
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
    "usable_positions",
    "xlco_sentence_vector",
]
