"""The XLCO negative queue: a ring buffer of key vectors, identical on every rank."""

import torch
from torch import nn


class NegativeQueue(nn.Module):
    """
    `size` keys of dimension `dim`, initialised with random normal values as in the reference. `enqueue` writes a
    (possibly all-gathered) block of keys at `pointer`, wrapping around; `filled` counts keys written so far
    (capped at `size`), so callers can mask the slots that still hold their random initial values.
    """

    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("keys", torch.randn(size, dim, generator=generator))
        self.pointer = 0
        self.filled = 0

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @property
    def is_full(self) -> bool:
        return self.filled >= self.size

    def valid_mask(self) -> torch.BoolTensor | None:
        """`(size,)` True where the slot holds a real key; `None` once every slot does."""
        if self.is_full:
            return None
        return torch.arange(self.size, device=self.keys.device) < self.filled

    def valid_keys(self) -> torch.Tensor:
        """The slots that hold real keys: the first `filled` (they are written in order from slot 0 until the queue
        is full). A slice, so its size is known on the host: no boolean indexing, which would read the device."""
        return self.keys[: self.filled]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Writes `(n, dim)` keys at the pointer; with `n > size` only the last `size` keys are kept."""
        keys = keys.detach().to(self.keys.dtype)[-self.size :]
        n = keys.shape[0]
        first = min(n, self.size - self.pointer)
        self.keys[self.pointer : self.pointer + first] = keys[:first]
        self.keys[: n - first] = keys[first:]
        self.pointer = (self.pointer + n) % self.size
        self.filled = min(self.filled + n, self.size)
