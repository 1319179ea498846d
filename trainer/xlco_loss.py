"""The cross-lingual contrast (XLCO) loss: InfoNCE of query vectors against their keys and a queue of negatives."""

import torch
from torch.nn import functional as F


def xlco_loss(
    queries: torch.Tensor,
    keys: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    negatives_mask: torch.BoolTensor | None = None,
    normalize: bool = False,
    in_batch_negatives: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Cross-entropy over `[q·k⁺, q·n_1, …, q·n_K] / temperature` with the positive at index 0.

    Raw dot products by default, as in the reference (no L2 normalisation); `normalize=True` uses cosine similarity.
    The loss is averaged over the batch (the reference sums; averaging keeps the scale independent of batch size).

    Args:
        queries: `(batch, dim)` query vectors (with gradient).
        keys: `(batch, dim)` positive key vectors (no gradient).
        negatives: `(K, dim)` queue.
        negatives_mask: `(K,)`, False for queue slots that hold no real key yet (excluded from the softmax).
        in_batch_negatives: also contrast each query with the other queries' keys of this batch. Those keys come
            from the same key-encoder version as the positive, so the positive cannot be told apart by being the
            freshest key, a shortcut that a fast-moving key encoder (small models from scratch) otherwise takes.

    Returns:
        the loss (scalar) and the accuracy: the share of queries whose positive scores above every negative.
    """
    if normalize:
        queries, keys, negatives = (F.normalize(x, dim=-1) for x in (queries, keys, negatives))
    negatives = negatives.to(queries.dtype)
    positive = (queries * keys.to(queries.dtype)).sum(dim=-1, keepdim=True)
    negative = queries @ negatives.T
    if negatives_mask is not None:
        negative = negative.masked_fill(~negatives_mask, float("-inf"))
    if in_batch_negatives:
        batch = queries @ keys.to(queries.dtype).T  # (batch, batch); the diagonal is the positive
        eye = torch.eye(batch.shape[0], dtype=torch.bool, device=batch.device)
        negative = torch.cat([batch.masked_fill(eye, float("-inf")), negative], dim=1)
    logits = torch.cat([positive, negative], dim=1) / temperature
    targets = torch.zeros(queries.shape[0], dtype=torch.long, device=queries.device)
    loss = F.cross_entropy(logits.float(), targets)
    accuracy = (logits.argmax(dim=1) == 0).float().mean()
    return loss, accuracy
