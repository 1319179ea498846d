"""One process of the reference-normalisation DDP test (run by torch.distributed.run, gloo on CPU).

Every world size trains on the same fixed batches of 8 rows: with 2 processes rank r takes rows 4r..4r+3 of each,
with 1 process all 8. Two updates with gradient accumulation 2 (SGD, so any scaling error shows), then dump the
query weights, key encoder and queue.
"""

import json
import os
import sys
from pathlib import Path

import torch
from helpers import SyntheticPretrainingStream, build_tiny_tokenizer, set_queue_filled, tiny_infoxlm, tiny_trainer
from safetensors.torch import save_file

from trainer import InfoXLMDataCollator

ROWS, UPDATES, ACCUMULATION = 8, 2, 2


class ReplayCollator:
    """Returns this rank's rows of the next fixed batch, whatever examples the data loader hands it."""

    def __init__(self, batches, rank: int, world_size: int):
        per_rank = ROWS // world_size
        self.rows = slice(rank * per_rank, (rank + 1) * per_rank)
        self.batches, self.calls = batches, 0

    def __call__(self, examples):
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        # Rows of every (batch, seq) tensor; the flat `masked_positions` do not split by rows, so the trainer falls
        # back to the labels' mask.
        return {
            objective: {k: v[self.rows] for k, v in inputs.items() if k != "masked_positions"}
            for objective, inputs in batch.items()
        }


def fixed_batches(tokenizer) -> list[dict]:
    torch.manual_seed(1234)
    stream = iter(SyntheticPretrainingStream(len(tokenizer), seed=7))
    collator = InfoXLMDataCollator(tokenizer)
    return [collator([next(stream) for _ in range(ROWS)]) for _ in range(UPDATES * ACCUMULATION)]


def main(output_dir: Path):
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    tokenizer = build_tiny_tokenizer()
    batches = fixed_batches(tokenizer)
    model = tiny_infoxlm(len(tokenizer), xlco_queue_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = tiny_trainer(
        tokenizer,
        output_dir / "run",
        max_steps=UPDATES,
        model=model,
        per_device_train_batch_size=ROWS // world_size,
        gradient_accumulation_steps=ACCUMULATION,
        optim="sgd",
        learning_rate=0.5,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        xlco_momentum="constant,0.9",
        loss_normalization="reference",
    )
    trainer.data_collator.collator = ReplayCollator(batches, rank, world_size)
    set_queue_filled(trainer.xlco, trainer.xlco.queue_size)  # full of known random keys: XLCO from the first update
    trainer.train()
    tensors = {f"query.{n}": p.detach().clone().contiguous() for n, p in trainer.model.named_parameters()}
    tensors.update({n: t.contiguous() for n, t in trainer.xlco.state_dict().items()})
    output_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, output_dir / f"rank{rank}.safetensors")
    meta = {"world_size": trainer.args.world_size, "rows_per_rank": ROWS // world_size}
    (output_dir / f"rank{rank}.json").write_text(json.dumps(meta))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
