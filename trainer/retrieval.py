"""Tatoeba-style sentence retrieval with the XLCO sentence vectors, as a Trainer callback."""

import logging

import torch
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase, TrainerCallback

from modeling_infoxlm import InfoXLMForPreTraining

logger = logging.getLogger(__name__)


@torch.no_grad()
def encode(
    model: InfoXLMForPreTraining,
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[str],
    batch_size: int = 64,
    max_length: int = 128,
) -> torch.Tensor:
    """`(len(sentences), dim)` XLCO sentence vectors, computed in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    vectors = []
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(
            sentences[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(model.device)
        vectors.append(model.sentence_vector(batch["input_ids"], batch["attention_mask"]).float().cpu())
    model.train(was_training)
    return torch.cat(vectors)


def retrieval_accuracy(source: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """
    Share of rows `i` whose nearest neighbour by cosine similarity on the other side is row `i`.

    Args:
        source, target: `(n, dim)` vectors of aligned translations.

    Returns:
        (source→target accuracy, target→source accuracy).
    """
    similarity = F.normalize(source, dim=-1) @ F.normalize(target, dim=-1).T
    gold = torch.arange(similarity.shape[0])
    forward = (similarity.argmax(dim=1) == gold).float().mean().item()
    backward = (similarity.argmax(dim=0) == gold).float().mean().item()
    return forward, backward


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


class RetrievalEvaluationCallback(TrainerCallback):
    """Logs retrieval accuracy before training, every `eval_steps` updates, and at the end (main process only)."""

    def __init__(self, trainer, tokenizer, pairs: dict[str, tuple[list[str], list[str]]], eval_steps: int):
        self.trainer = trainer
        self.tokenizer = tokenizer
        self.pairs = pairs
        self.eval_steps = eval_steps
        self.last_step = None
        self.history: list[dict[str, float]] = []

    def _evaluate(self, state):
        if state.global_step == self.last_step:
            return
        self.last_step = state.global_step
        if not self.trainer.is_world_process_zero():
            return
        metrics = evaluate_retrieval(self.trainer.model, self.tokenizer, self.pairs)
        self.history.append({"step": state.global_step, **metrics})
        logger.info(f"step {state.global_step}: retrieval accuracy {metrics.get('retrieval_acc', 0.0):.3f}")
        self.trainer.log(dict(metrics))

    def on_train_begin(self, args, state, control, **kwargs):
        self._evaluate(state)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.eval_steps == 0:
            self._evaluate(state)

    def on_train_end(self, args, state, control, **kwargs):
        self._evaluate(state)
