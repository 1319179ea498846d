"""The training callback that logs held-out retrieval accuracy while `run_pretrain.py` trains."""

import logging

from transformers import TrainerCallback

from evaluation.retrieval import evaluate_retrieval

logger = logging.getLogger(__name__)


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
