"""Collation whose randomness depends only on the batch's position in the stream, so that resuming is exact."""

import torch
from torch.utils.data import get_worker_info


class SeededCollator:
    """
    Wraps a collator that draws from torch's global RNG (masking, mixup). Each call runs under a seed derived from
    `(seed, dataloader worker, calls so far)` and restores the global RNG afterwards. On resume the Trainer re-collates
    the batches it skips, so batch N gets the same masks whether or not training was interrupted before it, and
    dropout's RNG (saved in the checkpoint) is untouched by data loading.
    """

    def __init__(self, collator, seed: int):
        self.collator = collator
        self.seed = seed
        self.calls = 0

    def __call__(self, examples):
        worker = get_worker_info()
        worker_id = 0 if worker is None else worker.id + 1
        seed = (self.seed * 1_000_003 + worker_id * 7_919 + self.calls) % (2**63)
        self.calls += 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.collator(examples)
