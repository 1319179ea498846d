"""One rank of the two-process test (run by torch.distributed.run with gloo on CPU): 3 updates, then dump state."""

import json
import sys
from pathlib import Path

import torch
from conftest import build_tiny_tokenizer
from pretraining_stream import tiny_infoxlm, tiny_trainer
from safetensors.torch import save_file
from transformers import TrainerCallback


class KeepLocalKeys(TrainerCallback):
    def __init__(self, trainer):
        self.trainer, self.keys = trainer, None

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.keys = torch.cat(self.trainer._pending_keys).clone()


def main(output_dir: Path):
    tokenizer = build_tiny_tokenizer()
    model = tiny_infoxlm(len(tokenizer), xlco_queue_size=64)
    trainer = tiny_trainer(tokenizer, output_dir / "run", max_steps=3, model=model)
    keep = KeepLocalKeys(trainer)
    trainer.add_callback(keep)
    trainer.train()
    rank = trainer.args.process_index
    tensors = {f"key_encoder.{n}": p.contiguous() for n, p in trainer.key_encoder.named_parameters()}
    tensors.update({f"query.{n}": p.clone() for n, p in trainer.model.named_parameters()})
    tensors["queue"] = trainer.queue.keys.contiguous()
    tensors["local_keys"] = keep.keys.contiguous()
    save_file(tensors, output_dir / f"rank{rank}.safetensors")
    meta = {"world_size": trainer.args.world_size, "filled": trainer.queue.filled, "pointer": trainer.queue.pointer}
    (output_dir / f"rank{rank}.json").write_text(json.dumps(meta))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
