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
    reduction: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Cross-entropy over `[q·k⁺, q·n_1, …, q·n_K] / temperature` with the positive at index 0.

    Raw dot products by default, as in the reference (no L2 normalisation); `normalize=True` uses cosine similarity.
    `reduction="sum"` is the reference's (its trainer then divides by the update's sample size); `"mean"` averages
    over the batch.

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
    loss = F.cross_entropy(logits.float(), targets, reduction=reduction)
    accuracy = (logits.argmax(dim=1) == 0).float().mean()
    return loss, accuracy


@torch.no_grad()
def shortcut_statistics(
    queries: torch.Tensor,
    keys: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    negatives_mask: torch.BoolTensor | None = None,
) -> dict[str, torch.Tensor]:
    """
    Does XLCO find the positive by its content or by its age? The positive key is the only key of the batch's own
    key-encoder version among the queue's older ones; the other keys of the batch are just as fresh but are not
    translations. Scores are logits (dot product / temperature), averaged over the batch.

    Returns:
        `xlco_positive_minus_queue`: mean score of the positive minus the mean score of a queue key: the margin the
            loss rewards.
        `xlco_fresh_minus_queue`: mean score of another sentence's fresh key (same batch) minus that of a queue key.
            Near `xlco_positive_minus_queue`, freshness alone earns the margin (the shortcut); near 0, the margin is
            earned by content.
        `xlco_in_batch_accuracy`: share of queries whose positive outscores every other key of the batch (chance is
            1 / batch size); `xlco_accuracy` near 1 with this near chance means the shortcut.
    """
    # Sums and static shapes only: boolean-mask indexing would size its output from the device's values, which
    # makes the host wait for the device.
    queries, keys, negatives = queries.float(), keys.float(), negatives.float()
    scores = queries @ keys.T / temperature  # (batch, batch); the diagonal holds the positives
    batch = scores.shape[0]
    eye = torch.eye(batch, dtype=torch.bool, device=scores.device)
    others = scores.masked_fill(eye, float("-inf"))
    statistics = {"xlco_in_batch_accuracy": (scores.diagonal() > others.max(dim=1).values).float().mean()}
    if negatives_mask is None:
        mean_negative = negatives.mean(dim=0) if len(negatives) else None  # (an empty queue holds no age)
    else:  # the mean over the valid slots; the caller knows on the host whether there are any
        weights = negatives_mask.to(negatives.dtype)
        mean_negative = weights @ negatives / weights.sum().clamp(min=1)
    if mean_negative is not None:
        queue = (queries @ mean_negative).mean() / temperature  # = mean over queries and queue of q·n / τ
        statistics["xlco_positive_minus_queue"] = scores.diagonal().mean() - queue
        if batch > 1:
            off_diagonal = (scores.sum() - scores.diagonal().sum()) / (batch * (batch - 1))
            statistics["xlco_fresh_minus_queue"] = off_diagonal - queue
    return statistics
