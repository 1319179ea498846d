"""One rank of the two-process test (run by torch.distributed.run with gloo on CPU): 3 updates under bf16 autocast,
with a NaN loss on rank 1 only at update 2; dumps the state after every update."""

import json
import sys
from pathlib import Path

from helpers import build_tiny_tokenizer, snapshot, tiny_infoxlm, tiny_trainer
from safetensors.torch import save_file
from transformers import TrainerCallback

POISONED_RANK, POISONED_UPDATE = 1, 2


class KeepLocalKeys:
    """This rank's keys of the last key-encoder pass (the last update's micro-batch), as the queue stores them."""

    def __init__(self, trainer):
        self.keys = None
        trainer.xlco.register_forward_hook(self.hook)

    def hook(self, module, inputs, keys):
        self.keys = keys.float().clone()


class StateAfterEachUpdate(TrainerCallback):
    """Query weights, AdamW moments, key encoder and queue after every update."""

    def __init__(self, trainer):
        self.trainer, self.tensors = trainer, {}

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        self.tensors.update({f"after{step}.{name}": t for name, t in snapshot(self.trainer).items()})
        optimizer_state = self.trainer.optimizer.state
        for name, p in self.trainer.model.named_parameters():
            for moment in ("exp_avg", "exp_avg_sq"):
                if moment in optimizer_state.get(p, {}):
                    self.tensors[f"after{step}.{moment}.{name}"] = optimizer_state[p][moment].detach().clone()


def poison_one_update(trainer, rank: int) -> None:
    """NaN out the MLM head's output on this rank's MLM pass of update POISONED_UPDATE (MLM, TLM per update)."""
    calls = {"n": 0}

    def hook(module, inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 2 * POISONED_UPDATE - 1 else output

    if rank == POISONED_RANK:
        trainer.model.lm_head.register_forward_hook(hook)


def main(output_dir: Path):
    tokenizer = build_tiny_tokenizer()
    model = tiny_infoxlm(len(tokenizer), xlco_queue_size=64)
    # bf16: no GradScaler, so nothing but the trainer's own skip keeps a NaN out of the weights.
    trainer = tiny_trainer(tokenizer, output_dir / "run", max_steps=3, model=model, bf16=True)
    keep, states = KeepLocalKeys(trainer), StateAfterEachUpdate(trainer)
    trainer.add_callback(states)
    rank = trainer.args.process_index
    poison_one_update(trainer, rank)
    trainer.train()
    xlco = trainer.xlco.state_dict()
    tensors = {f"xlco.{n}": t.contiguous() for n, t in xlco.items()}
    tensors.update({f"query.{n}": p.clone() for n, p in trainer.model.named_parameters()})
    tensors["local_keys"] = keep.keys.contiguous()
    tensors.update({name: t.contiguous() for name, t in states.tensors.items()})
    save_file(tensors, output_dir / f"rank{rank}.safetensors")
    meta = {
        "world_size": trainer.args.world_size,
        "filled": int(xlco["queue_filled"]),
        "pointer": int(xlco["queue_pointer"]),
    }
    (output_dir / f"rank{rank}.json").write_text(json.dumps(meta))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
