"""Where a training step makes the host wait for the device, counted on CPU by benchmarks/host_syncs.py's counter."""

import importlib.util
from collections import Counter
from pathlib import Path

import torch
from helpers import SyntheticPretrainingStream, set_queue_filled, tiny_trainer

from trainer import InfoXLMDataCollator

REPO = Path(__file__).resolve().parents[1]


def load_host_syncs():
    spec = importlib.util.spec_from_file_location("host_syncs", REPO / "benchmarks" / "host_syncs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


host_syncs = load_host_syncs()


def test_the_counter_sees_each_kind_of_sync_and_nothing_else():
    x, mask = torch.randn(4, 3), torch.tensor([True, False, True, False])
    counts = Counter()
    with host_syncs.count_host_syncs(counts):
        _ = x.sum() * 2 + x.mean(dim=0)  # device-side work only: not counted
        _ = x.index_select(0, torch.arange(2))
        x.sum().item()
        bool(x.sum() > 0)
        x[mask]
        mask.nonzero()
        torch.tensor(3)
        x.tolist()
    kinds = Counter(site.split(" at ")[0] for site in counts.elements())
    assert kinds == {
        "scalar read": 2,
        "boolean-mask indexing": 1,
        "nonzero": 1,
        "tensor from Python data": 1,
        "tolist": 1,
    }, counts
    assert all(site.endswith(f"test_host_syncs.py:{site.rsplit(':', 1)[1]}") for site in counts)


def test_our_training_step_reads_the_device_only_where_transformers_does_for_the_mlm_pass(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=1, xlco_queue_fill="masked")
    trainer.xlco.place(trainer.args.device)
    set_queue_filled(trainer.xlco, 4)  # partly filled: masked negatives, statistics
    stream = iter(SyntheticPretrainingStream(len(tiny_tokenizer)))
    batch = InfoXLMDataCollator(tiny_tokenizer)([next(stream) for _ in range(4)])
    counts = Counter()
    with host_syncs.count_host_syncs(counts):
        loss = trainer.training_step(trainer.model, batch, trainer.sample_size(batch))
    assert torch.isfinite(loss)
    # MLM, TLM, XLCO query and key passes, masked-token selection, XLCO loss and statistics, sample sizes, the
    # non-finite flag: only transformers' own `padding_mask.all()` of the MLM pass (it may drop the mask there).
    assert sum(counts.values()) == 1 and "masking_utils.py" in next(iter(counts)), counts
    assert trainer.xlco.is_active(1)
    trainer.log({"loss": loss.item()})  # what the step recorded, reduced (after the counted step)
    assert "xlco_positive_minus_queue" in trainer.state.log_history[-1]
