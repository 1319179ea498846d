"""The XLCO key encoder: a moving-average copy of just the part of the query model that XLCO uses."""

import copy

import torch
from torch import nn

from modeling_infoxlm import InfoXLMForPreTraining, InfoXLMModel, xlco_sentence_vector


class KeyEncoder(nn.Module):
    """
    Embeddings, encoder layers `1..xlco_layer` and the XLCO projection of a query model, without gradients, the MLM
    head or the layers above `xlco_layer`. Its parameter names are the query model's (`roberta.*`, `xlco_proj.*`),
    which is how `update` pairs them. Kept in float32 whatever the training precision (like the master weights).
    """

    def __init__(self, query_model: InfoXLMForPreTraining):
        super().__init__()
        config = copy.deepcopy(query_model.config)
        config.num_hidden_layers = config.xlco_layer
        self.xlco_layer = config.xlco_layer
        self.roberta = InfoXLMModel(config, add_pooling_layer=False)
        self.xlco_proj = copy.deepcopy(query_model.xlco_proj)
        query_state = query_model.state_dict()
        self.load_state_dict({name: query_state[name] for name in self.state_dict()}, strict=True)
        self.to(device=query_model.device, dtype=torch.float32)
        self.requires_grad_(False)
        # No dropout in the keys, as in MoCo. The reference's key model is in training mode, but with the paper's
        # dropout 0 that computes the same keys; with dropout > 0 (e.g. from scratch) ours stay deterministic.
        self.eval()
        self.names = [name for name, _ in self.named_parameters()]

    def query_parameters(self, query_model: nn.Module) -> list[torch.Tensor]:
        """The query model's tensors that this encoder tracks, in the order of `self.parameters()`."""
        params = dict(query_model.named_parameters(remove_duplicate=False))
        return [params[name] for name in self.names]

    @torch.no_grad()
    def update(self, query_model: nn.Module, momentum: float) -> None:
        """`k = m*k + (1-m)*q` over every tracked tensor in one fused multi-tensor op (`lerp` towards q by 1-m)."""
        keys = list(self.parameters())
        queries = [
            q.detach().float() if q.dtype != torch.float32 else q.detach() for q in self.query_parameters(query_model)
        ]
        torch._foreach_lerp_(keys, queries, 1.0 - momentum)

    @torch.no_grad()
    def copy_from(self, query_model: nn.Module) -> None:
        """Sets the key encoder equal to the query encoder (momentum 0), e.g. when XLCO starts."""
        torch._foreach_copy_(list(self.parameters()), [q.detach() for q in self.query_parameters(query_model)])

    @torch.no_grad()
    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch, seq)` → `(batch, xlco_projection_size)` key vectors, exactly as the query model computes them."""
        return xlco_sentence_vector(self.roberta, self.xlco_proj, input_ids, attention_mask, self.xlco_layer)
