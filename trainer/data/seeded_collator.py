"""Collation whose randomness depends only on the batch's position in the stream, so that resuming is exact."""

import numpy as np
import torch
from torch.utils.data import get_worker_info


class SeededCollator:
    """
    Wraps a collator that draws from torch's global RNG (masking, mixup). Each call runs under a seed derived from
    `(seed, dataloader worker, position)` and restores the global RNG afterwards, so batch N gets the same masks
    whether or not training was interrupted before it, and dropout's RNG (saved in the checkpoint) is untouched by
    data loading.

    The position is the first example's `example_index` when the examples carry one (`PretrainingDataset` items do:
    a resume that restores the stream position gets the same seeds without collating anything again); otherwise it
    is the number of calls so far, which is exact when the Trainer resumes by re-collating the batches it skips.
    """

    def __init__(self, collator, seed: int):
        self.collator = collator
        self.seed = seed
        self.calls = 0

    def __call__(self, examples):
        worker = get_worker_info()
        worker_id = 0 if worker is None else worker.id + 1
        position = self.calls
        if examples and "example_index" in examples[0]:
            position = examples[0]["example_index"]
            examples = [{k: v for k, v in example.items() if k != "example_index"} for example in examples]
        seed = int(np.random.SeedSequence([self.seed, worker_id, position]).generate_state(1, np.uint64)[0] >> 1)
        self.calls += 1
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only (what fork_rng restores): torch.manual_seed would also reseed every GPU's
            # generator (dropout) from the data position, and on a host without CUDA it records a stack trace per
            # call for CUDA's lazy init (about 0.25 ms a batch, over a tenth of what a batch of cached data costs).
            torch.default_generator.manual_seed(seed)
            return self.collator(examples)
