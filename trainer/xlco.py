"""
XLCO, the cross-lingual contrast, as one object (the shape of MoCo's `builder.py`): the momentum key encoder, the
negative queue with its pointer, the momentum schedule, the InfoNCE loss and its shortcut statistics, the queue fill
and one `state_dict`. `InfoXLMTrainer` drives it through its public methods; nothing else touches its parts.
"""

import contextlib
import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from modeling_infoxlm import InfoXLMForPreTraining, InfoXLMModel, xlco_sentence_vector

from .checkpoints import CheckpointError
from .data import DataError

# ---------------------------------------------------------------------------------------------------------------------
# The momentum schedule

MOMENTUM_SYNTAX = (
    '"constant,m", "constant_with_refresh,m,interval", "linear,begin,end,m_min,m_max" or '
    '"exponential,alpha,m_min,m_max"'
)
MOMENTUM_ARITY = {"constant": 1, "constant_with_refresh": 2, "linear": 4, "exponential": 3}


@dataclass(frozen=True)
class MomentumSchedule:
    """
    `m(step)` for the EMA `k = m*k + (1-m)*q`, `step` counting optimizer updates from 1, with the reference
    implementation's syntax:
    - `constant,m`
    - `constant_with_refresh,m,interval`: 0 (key encoder := query encoder) every `interval` updates, else m
    - `linear,begin,end,m_min,m_max`: m_min before `begin`, m_max after `end`, linear in between
    - `exponential,alpha,m_min,m_max`: `1 - step**(-alpha)`, clipped to [m_min, m_max]
    """

    kind: str
    values: tuple[float, ...]

    @classmethod
    def parse(cls, spec: str) -> "MomentumSchedule":
        kind, *raw = [part.strip() for part in spec.split(",")]
        if kind not in MOMENTUM_ARITY:
            raise ValueError(
                f"Unknown momentum schedule {kind!r} in --xlco_momentum {spec!r}; expected {MOMENTUM_SYNTAX}."
            )
        if len(raw) != MOMENTUM_ARITY[kind]:
            raise ValueError(
                f"--xlco_momentum {spec!r}: {kind} takes {MOMENTUM_ARITY[kind]} numbers; expected {MOMENTUM_SYNTAX}."
            )
        try:
            values = tuple(float(value) for value in raw)
        except ValueError:
            raise ValueError(
                f"--xlco_momentum {spec!r} has a value that is not a number; expected {MOMENTUM_SYNTAX}."
            ) from None
        momenta = {"constant": values[:1], "constant_with_refresh": values[:1]}.get(kind, values[-2:])
        if not all(0.0 <= m <= 1.0 for m in momenta):
            raise ValueError(f"--xlco_momentum {spec!r}: momenta must lie in [0, 1].")
        if kind == "constant_with_refresh" and values[1] < 1:
            raise ValueError(f"--xlco_momentum {spec!r}: the refresh interval must be >= 1.")
        if kind == "linear" and values[1] <= values[0]:
            raise ValueError(f"--xlco_momentum {spec!r}: 'end' must be greater than 'begin'.")
        return cls(kind, values)

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.values[0]
        if self.kind == "constant_with_refresh":
            momentum, interval = self.values
            return 0.0 if step % int(interval) == 0 else momentum
        if self.kind == "linear":
            begin, end, m_min, m_max = self.values
            fraction = min(max((step - begin) / (end - begin), 0.0), 1.0)
            return m_min + fraction * (m_max - m_min)
        alpha, m_min, m_max = self.values
        return min(max(1.0 - math.pow(max(step, 1), -alpha), m_min), m_max)

    @property
    def final(self) -> float:
        """The momentum the schedule settles at (m; m_max for `linear` and `exponential`): what a saved model's
        config states as its `xlco_momentum`, the default of a run that continues from it."""
        return self.values[0] if self.kind in ("constant", "constant_with_refresh") else self.values[-1]

    def __str__(self) -> str:
        return ",".join([self.kind, *(f"{value:g}" for value in self.values)])


# ---------------------------------------------------------------------------------------------------------------------
# The loss and what it tells about the shortcut


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


# ---------------------------------------------------------------------------------------------------------------------
# The key encoder


class KeyEncoder(nn.Module):
    """
    Embeddings, encoder layers `1..xlco_layer` and the XLCO projection of a query model, without gradients, the MLM
    head or the layers above `xlco_layer`. Its parameter names are the query model's (`roberta.*`, `xlco_proj.*`),
    which is how the EMA pairs them. Kept in float32 whatever the training precision (like the master weights).
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
        return xlco_sentence_vector(self.roberta, self.xlco_proj, input_ids, attention_mask, self.xlco_layer)


# ---------------------------------------------------------------------------------------------------------------------
# XLCO


class XLCO(nn.Module):
    """
    Everything XLCO keeps besides the query model. Its `state_dict()` is the whole state: `key_encoder.<name>` (the
    query model's names), `queue` (`(K, dim)` keys, initialised with random normal values as in the reference),
    `queue_pointer` (the next slot to write) and `queue_filled` (keys written so far, capped at K). The pointer and
    fill count are also kept as host integers, so that a training step never reads them from the device.

    One update: `training_keys` for each micro-batch (the keys are remembered), `loss` of the query vectors against
    them and the queue, then `after_update` once the optimizer has stepped (EMA, enqueue of every rank's keys, key
    drift), or `discard_pending` when the update was skipped.
    """

    # The reference fills with K // (B·R) + 100 batches, so the queue has wrapped once the loss starts.
    PREFILL_EXTRA_BATCHES = 100

    def __init__(
        self,
        query_model: InfoXLMForPreTraining,
        momentum: MomentumSchedule,
        *,
        enable_step: int = 0,
        queue_fill: str = "prefill",
        normalize: bool = False,
        in_batch_negatives: bool = False,
        keys_per_update: int = 1,
        seed: int = 0,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        """
        `query_model`'s config gives the queue size, temperature and vector size; `keys_per_update` (B·GA·R) is how
        many keys one update enqueues, which sets how often the key drift is measured (once per queue turnover);
        `seed` draws the queue's initial keys; `autocast` is the precision context of the query pass, so that keys
        are computed as the queries are.
        """
        super().__init__()
        config = query_model.config
        self.momentum, self.enable_step, self.queue_fill = momentum, enable_step, queue_fill
        self.normalize, self.in_batch_negatives = normalize, in_batch_negatives
        self.temperature, self.keys_per_update, self.autocast = config.xlco_temperature, keys_per_update, autocast
        # Placed where the model trains when training starts (`place`), not here: the model may reach its device
        # only then (`place_model_on_device=False`, accelerate's `prepare`).
        self.key_encoder = KeyEncoder(query_model)
        dim = config.xlco_projection_size if config.xlco_use_projection else config.hidden_size
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("queue", torch.randn(config.xlco_queue_size, dim, generator=generator))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self._pointer = self._filled = 0  # host mirrors of the two buffers
        self._pending: list[torch.Tensor] = []  # this rank's keys of the current update, enqueued after it
        self._drift_probe: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ reading

    @property
    def queue_size(self) -> int:
        return self.queue.shape[0]

    @property
    def fill_fraction(self) -> float:
        """The share of queue slots that hold real keys."""
        return self._filled / self.queue_size

    def is_active(self, update: int) -> bool:
        """Whether the XLCO loss is part of optimizer update number `update` (1-based): after `enable_step`, and
        with `queue_fill="prefill"` once the queue is full."""
        if update <= self.enable_step:
            return False
        return self.queue_fill == "masked" or self._filled >= self.queue_size

    def updates_per_queue_turnover(self) -> int:
        """Updates after which every queue slot has been rewritten: the age of the oldest negative."""
        return max(1, math.ceil(self.queue_size / self.keys_per_update))

    @classmethod
    def prefill_batches(cls, queue_size: int, keys_per_batch: int) -> int:
        """Key batches of the fill phase for a queue of `queue_size` and `keys_per_batch` = B·R keys per batch."""
        return queue_size // keys_per_batch + cls.PREFILL_EXTRA_BATCHES

    # ------------------------------------------------------------------ one update

    @torch.no_grad()
    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(batch, seq)` → `(batch, dim)` key vectors, as the query model computes its sentence vectors, in the
        query pass's precision (the key encoder itself stays float32)."""
        with self.autocast():
            return self.key_encoder(input_ids, attention_mask)

    def training_keys(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The keys of a training micro-batch: enqueued after the update if it happens (`after_update`); the first
        batch after a drift measurement is kept as the next probe."""
        keys = self(input_ids, attention_mask)
        if self._drift_probe is None:
            self._drift_probe = (input_ids, attention_mask, keys.float())
        self._pending.append(keys.float())
        return keys

    def loss(self, queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """The summed InfoNCE loss of `queries` against their `keys` and the queue (slots not yet written masked
        out with `queue_fill="masked"`), the accuracy, and the shortcut statistics (`shortcut_statistics`)."""
        mask = None
        if self.queue_fill == "masked" and self._filled < self.queue_size:
            mask = torch.arange(self.queue_size, device=self.queue.device) < self._filled
        loss, accuracy = xlco_loss(
            queries,
            keys,
            self.queue,
            self.temperature,
            negatives_mask=mask,
            normalize=self.normalize,
            in_batch_negatives=self.in_batch_negatives,
            reduction="sum",
        )
        # The slots that hold real keys are the first `filled` (written in order from slot 0 until the queue is
        # full): a slice, whose size the host knows, where boolean indexing would read the device.
        statistics = shortcut_statistics(queries, keys, self.queue[: self._filled], self.temperature)
        return loss, accuracy, statistics

    def update_key_encoder(self, query_model: nn.Module, update: int) -> None:
        """The EMA `k = m*k + (1-m)*q` with `m = momentum(update)`; a copy of the query encoder (momentum 0) up to
        `enable_step`, so that XLCO starts from keys of the current weights."""
        if update <= self.enable_step:
            self.key_encoder.copy_from(query_model)
        else:
            self.key_encoder.update(query_model, self.momentum(update))

    def enqueue_pending(self, gather: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Every rank's keys of this update (`gather`: all-gather over ranks) into the queue, identically on every
        rank."""
        pending, self._pending = self._pending, []
        if pending:
            self._enqueue(gather(torch.cat(pending)))

    def after_update(
        self, query_model: nn.Module, update: int, gather: Callable[[torch.Tensor], torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """After optimizer update number `update`: EMA, enqueue, and once per queue turnover the key drift
        (`{"xlco_key_drift": value}`, else `{}`)."""
        self.update_key_encoder(query_model, update)
        self.enqueue_pending(gather)
        if self._drift_probe is not None and update % self.updates_per_queue_turnover() == 0:
            return self._key_drift()
        return {}

    def discard_pending(self) -> None:
        """A skipped update: its keys never enter the queue."""
        self._pending = []

    @torch.no_grad()
    def _key_drift(self) -> dict[str, torch.Tensor]:
        """`xlco_key_drift`: how far the keys of the same sentences moved over one queue turnover, relative to how
        far apart the keys of different sentences are. Near or above 1, a key's age tells as much as its content:
        the positive (the freshest key) can be found without reading it (see the README on the shortcut check)."""
        input_ids, attention_mask, old = self._drift_probe
        self._drift_probe = None
        if old.shape[0] < 2:
            return {}
        new = self(input_ids, attention_mask).float()
        moved = (new - old).norm(dim=-1).mean()
        spread = torch.cdist(old, old)
        spread = spread.sum() / (old.shape[0] * (old.shape[0] - 1))
        return {"xlco_key_drift": moved / spread.clamp(min=1e-12)}

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        """Writes `(n, dim)` keys at the pointer, wrapping around; with `n > K` only the last K are kept. The
        buffers are written with fill kernels from the host mirrors: no device read."""
        size = self.queue_size
        keys = keys.detach().to(self.queue.dtype)[-size:]
        n = keys.shape[0]
        first = min(n, size - self._pointer)
        self.queue[self._pointer : self._pointer + first] = keys[:first]
        self.queue[: n - first] = keys[first:]
        self._pointer, self._filled = (self._pointer + n) % size, min(self._filled + n, size)
        self.queue_pointer.fill_(self._pointer)
        self.queue_filled.fill_(self._filled)

    # ------------------------------------------------------------------ before training

    def place(self, device: torch.device) -> None:
        """Key encoder and queue go where the model trains, in float32 whatever the training precision."""
        self.to(device=device, dtype=torch.float32)

    @torch.no_grad()
    def prefill(
        self,
        batches: Iterable[dict],
        gather: Callable[[torch.Tensor], torch.Tensor],
        num_batches: int,
        progress: bool = True,
    ) -> None:
        """The reference's fill phase: key-encoder passes over `num_batches` collated batches (`{"xlco": ...}`,
        this rank's share) before the first update, every rank's keys enqueued. Does nothing if the queue is full;
        raises DataError if the batches run out before it is."""
        if self._filled >= self.queue_size:
            return
        bar = tqdm(total=num_batches, desc="Filling the XLCO queue", disable=not progress, unit="batch")
        for done, batch in enumerate(batches, start=1):
            keys = self(batch["xlco"]["key_input_ids"], batch["xlco"]["key_attention_mask"])
            self._enqueue(gather(keys.float()))
            bar.update()
            if done >= num_batches:
                break
        bar.close()
        if self._filled < self.queue_size:
            raise DataError(
                f"The XLCO data ran out after {self._filled} keys while filling a queue of {self.queue_size}: "
                "lower --xlco_queue_size or use --xlco_queue_fill masked."
            )

    # ------------------------------------------------------------------ state

    def describe(self) -> dict:
        """What the state belongs to, for a person reading a checkpoint (`xlco_state.json`)."""
        return {
            "queue_pointer": self._pointer,
            "queue_filled": self._filled,
            "queue_size": self.queue_size,
            "xlco_layer": self.key_encoder.xlco_layer,
            "momentum_schedule": str(self.momentum),
            "xlco_enable_step": self.enable_step,
        }

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Restores the whole state, after checking every tensor's name and shape: raises CheckpointError naming
        the tensor, its shape, the shape needed and the flag to check, and then changes nothing."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state_dict)), sorted(set(state_dict) - set(own))
        if missing or unexpected:
            found = f"it lacks {missing[:5]}" if missing else f"it holds {unexpected[:5]}, which this model lacks"
            raise CheckpointError(
                f"{found}; it does not belong to this model (check --xlco_layer and the model config)."
            )
        for name, tensor in own.items():
            if state_dict[name].shape != tensor.shape:
                raise CheckpointError(
                    f"tensor {name} has shape {tuple(state_dict[name].shape)} but this model needs "
                    f"{tuple(tensor.shape)} (check --xlco_layer, --xlco_queue_size and the model config)."
                )
        counters = {name: int(state_dict[name]) for name in ("queue_pointer", "queue_filled")}
        for name, value in counters.items():
            if not 0 <= value <= self.queue_size:
                raise CheckpointError(f"{name}={value} is invalid: the queue holds {self.queue_size} keys.")
        for name, tensor in own.items():
            tensor.copy_(state_dict[name])
        self._pointer, self._filled = counters["queue_pointer"] % self.queue_size, counters["queue_filled"]
        self.queue_pointer.fill_(self._pointer)
