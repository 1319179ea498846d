"""XLCO against hand computations (loss, queue ring buffer, momentum schedules, key encoder EMA) and its state:
round trips, shape checks, the checkpoint files and their earlier layout."""

import json
import math

import pytest
import torch
from helpers import tiny_infoxlm
from safetensors.torch import save_file

from modeling_infoxlm import InfoXLMForPreTraining
from trainer.checkpoints import CheckpointError, load_xlco_state, save_xlco_state
from trainer.xlco import XLCO, MomentumSchedule, shortcut_statistics, xlco_loss

# xlco_loss and shortcut_statistics compute in float32 (they cast their inputs), the hand computations in Python
# floats: a relative 1e-6 is within a few float32 roundings of logits up to ~20, so compare at 1e-5.
FP32 = {"rel": 1e-5, "abs": 1e-5}


def hand_xlco_loss(q, k, queue, tau, valid=None):
    """Per-row InfoNCE written out with Python floats: -log(exp(q·k⁺/τ) / Σ exp(q·x/τ)), averaged."""
    losses, correct = [], 0
    for i in range(q.shape[0]):
        pos = sum(float(a) * float(b) for a, b in zip(q[i], k[i])) / tau
        negs = [
            sum(float(a) * float(b) for a, b in zip(q[i], queue[j])) / tau
            for j in range(queue.shape[0])
            if valid is None or valid[j]
        ]
        top = max([pos] + negs)
        denominator = sum(math.exp(x - top) for x in [pos] + negs)
        losses.append(-(pos - top - math.log(denominator)))
        correct += all(pos > n for n in negs)
    return sum(losses) / len(losses), correct / q.shape[0]


def test_xlco_loss_equals_hand_computation():
    generator = torch.Generator().manual_seed(0)
    q, k, queue = (torch.randn(n, 5, generator=generator, dtype=torch.float64) for n in (4, 4, 7))
    k[0] = q[0] * 3  # make one positive clearly win
    loss, accuracy = xlco_loss(q, k, queue, temperature=0.25)
    expected_loss, expected_accuracy = hand_xlco_loss(q, k, queue, 0.25)
    assert loss.item() == pytest.approx(expected_loss, **FP32)
    assert accuracy.item() == pytest.approx(expected_accuracy)
    assert 0 < expected_accuracy < 1  # the example is not degenerate


def test_xlco_loss_sum_reduction_is_the_batch_sum():
    generator = torch.Generator().manual_seed(2)
    q, k, queue = (torch.randn(n, 5, generator=generator, dtype=torch.float64) for n in (4, 4, 7))
    expected_mean, _ = hand_xlco_loss(q, k, queue, 0.25)
    summed, _ = xlco_loss(q, k, queue, temperature=0.25, reduction="sum")
    assert summed.item() == pytest.approx(4 * expected_mean, **FP32)


def dot(a, b):
    return sum(float(x) * float(y) for x, y in zip(a, b))


def test_shortcut_statistics_equal_hand_computation():
    generator = torch.Generator().manual_seed(3)
    q, k, queue = (torch.randn(n, 4, generator=generator, dtype=torch.float64) for n in (3, 3, 5))
    k[1] = q[1] * 2  # one positive clearly above the other fresh keys
    valid = torch.tensor([True, True, False, True, True])
    stats = shortcut_statistics(q, k, queue, 0.5, valid)
    queue_score = sum(dot(q[i], queue[j]) for i in range(3) for j in range(5) if valid[j]) / (3 * 4) / 0.5
    positive = sum(dot(q[i], k[i]) for i in range(3)) / 3 / 0.5
    fresh = sum(dot(q[i], k[j]) for i in range(3) for j in range(3) if i != j) / 6 / 0.5
    in_batch = sum(all(dot(q[i], k[i]) > dot(q[i], k[j]) for j in range(3) if j != i) for i in range(3)) / 3
    assert stats["xlco_positive_minus_queue"].item() == pytest.approx(positive - queue_score, **FP32)
    assert stats["xlco_fresh_minus_queue"].item() == pytest.approx(fresh - queue_score, **FP32)
    assert stats["xlco_in_batch_accuracy"].item() == pytest.approx(in_batch)
    assert 0 < in_batch < 1


def test_xlco_loss_masks_unfilled_slots_and_cosine_option():
    generator = torch.Generator().manual_seed(1)
    q, k, queue = (torch.randn(n, 3, generator=generator, dtype=torch.float64) for n in (3, 3, 6))
    valid = torch.tensor([True, True, False, True, False, False])
    loss, _ = xlco_loss(q, k, queue, 0.5, negatives_mask=valid)
    assert loss.item() == pytest.approx(hand_xlco_loss(q, k, queue, 0.5, valid)[0], **FP32)
    unit = [x / x.norm(dim=-1, keepdim=True) for x in (q, k, queue)]
    cosine, _ = xlco_loss(q, k, queue, 0.5, normalize=True)
    assert cosine.item() == pytest.approx(hand_xlco_loss(*unit, 0.5)[0], **FP32)


def test_xlco_loss_in_batch_negatives_add_the_other_rows_keys():
    generator = torch.Generator().manual_seed(2)
    q, k, queue = (torch.randn(n, 4, generator=generator, dtype=torch.float64) for n in (3, 3, 5))
    loss, accuracy = xlco_loss(q, k, queue, 0.25, in_batch_negatives=True)
    rows = [hand_xlco_loss(q[i : i + 1], k[i : i + 1], torch.cat([k[:i], k[i + 1 :], queue]), 0.25) for i in range(3)]
    assert loss.item() == pytest.approx(sum(r[0] for r in rows) / 3, **FP32)
    assert accuracy.item() == pytest.approx(sum(r[1] for r in rows) / 3)
    assert loss.item() != pytest.approx(xlco_loss(q, k, queue, 0.25)[0].item(), rel=1e-3)


def test_xlco_loss_gradient_flows_to_queries_only():
    q = torch.randn(2, 4, requires_grad=True)
    k, queue = torch.randn(2, 4), torch.randn(5, 4)
    xlco_loss(q, k, queue, 0.25)[0].backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


IDS = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]])
MASK = IDS.ne(1).long()


def tiny_xlco(model=None, momentum="constant,0.9", **settings) -> XLCO:
    return XLCO(model or tiny_model(), MomentumSchedule.parse(momentum), **settings)


def enqueue(xlco: XLCO, model, keys: torch.Tensor, update: int = 1) -> None:
    """`keys` into the queue through the public update: a micro-batch's keys are pending, and `gather` (the
    all-gather over ranks) hands back `keys`, as if the other ranks had computed them."""
    xlco.training_keys(IDS, MASK)
    xlco.after_update(model, update, gather=lambda local: keys)


@pytest.mark.parametrize("batch", [2, 3, 5, 8])  # 8 divides the queue of 8; 3 and 5 do not
def test_queue_ring_buffer_matches_a_python_list_model(batch):
    size = 8
    model = tiny_model(xlco_queue_size=size)
    xlco = tiny_xlco(model, queue_fill="prefill")
    dim = xlco.state_dict()["queue"].shape[1]
    slots = [None] * size
    pointer = filled = 0
    for step in range(7):
        keys = torch.arange(batch * dim, dtype=torch.float32).reshape(batch, dim) + 1000 * step
        enqueue(xlco, model, keys, update=step + 1)
        for row in keys[-size:]:
            slots[pointer] = row.tolist()
            pointer = (pointer + 1) % size
        filled = min(filled + batch, size)
        state = xlco.state_dict()
        assert (int(state["queue_pointer"]), int(state["queue_filled"])) == (pointer, filled)
        for index, expected in enumerate(slots):
            if expected is not None:
                assert state["queue"][index].tolist() == expected, (step, index)
        assert xlco.fill_fraction == filled / size
        assert xlco.is_active(step + 1) == (filled == size)  # prefill mode: the loss waits for a full queue


def test_queue_is_initialised_with_random_normal_values():
    xlco = tiny_xlco(tiny_model(xlco_queue_size=4096), seed=0)
    queue = xlco.state_dict()["queue"]
    assert abs(queue.mean().item()) < 0.05 and abs(queue.std().item() - 1) < 0.05
    assert int(xlco.state_dict()["queue_filled"]) == 0 and not xlco.is_active(1)
    assert torch.equal(tiny_xlco(tiny_model(xlco_queue_size=4096), seed=0).state_dict()["queue"], queue)
    assert not torch.equal(tiny_xlco(tiny_model(xlco_queue_size=4096), seed=1).state_dict()["queue"], queue)


def test_momentum_schedules():
    assert MomentumSchedule.parse("constant,0.9999")(1) == 0.9999
    refresh = MomentumSchedule.parse("constant_with_refresh,0.99,3")
    assert [refresh(s) for s in (1, 2, 3, 4, 6)] == [0.99, 0.99, 0.0, 0.99, 0.0]
    linear = MomentumSchedule.parse("linear,10,20,0.9,0.99")
    assert linear(5) == 0.9 and linear(15) == pytest.approx(0.945) and linear(25) == 0.99
    exponential = MomentumSchedule.parse("exponential,0.5,0.5,0.999")
    assert exponential(1) == 0.5  # 1 - 1 = 0, clipped up
    assert exponential(100) == pytest.approx(0.9)
    assert exponential(10**8) == 0.999  # clipped down
    for bad in ("cosine,0.9", "constant", "constant,abc", "linear,5,5,0.9,0.99", "constant,1.5"):
        with pytest.raises(ValueError, match="xlco_momentum"):
            MomentumSchedule.parse(bad)


def tiny_model(**overrides) -> InfoXLMForPreTraining:
    """Four layers, XLCO at layer 2: the key encoder must hold the embeddings and layers 0 and 1 only."""
    return tiny_infoxlm(50, num_hidden_layers=4, max_position_embeddings=40, **overrides)


def key_encoder_tensors(xlco: XLCO) -> dict[str, torch.Tensor]:
    prefix = "key_encoder."
    return {name[len(prefix) :]: t for name, t in xlco.state_dict().items() if name.startswith(prefix)}


def test_key_encoder_holds_only_what_xlco_needs_and_matches_query_vectors():
    model = tiny_model().eval()
    xlco = tiny_xlco(model)
    names = set(key_encoder_tensors(xlco))
    assert all(
        name.startswith(("roberta.embeddings.", "roberta.encoder.layer.0.", "roberta.encoder.layer.1."))
        or name == "xlco_proj.weight"
        for name in names
    )
    assert "xlco_proj.weight" in names and not any("lm_head" in n or "layer.2." in n for n in names)
    assert all(not p.requires_grad and p.dtype == torch.float32 for p in xlco.parameters())
    with torch.no_grad():
        assert torch.equal(xlco(IDS, MASK), model.sentence_vector(IDS, MASK))
    # A copy, not a view: changing the query model leaves the keys alone.
    with torch.no_grad():
        model.xlco_proj.weight.add_(1.0)
    assert not torch.equal(key_encoder_tensors(xlco)["xlco_proj.weight"], model.xlco_proj.weight)


def test_key_encoder_ema_matches_per_tensor_loop_and_copies_before_the_enable_step():
    model = tiny_model()
    xlco = tiny_xlco(model, momentum="constant,0.9", enable_step=2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    before = {name: p.clone() for name, p in key_encoder_tensors(xlco).items()}
    query = dict(model.named_parameters(remove_duplicate=False))
    xlco.update_key_encoder(model, update=3)  # after the enable step: the EMA
    for name, p in key_encoder_tensors(xlco).items():
        expected = 0.9 * before[name] + 0.1 * query[name].detach()
        torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-6)
    xlco.update_key_encoder(model, update=2)  # up to the enable step: a copy of the query encoder
    for name, p in key_encoder_tensors(xlco).items():
        assert torch.equal(p, query[name].detach())


def filled_xlco(seed: int) -> tuple[XLCO, torch.nn.Module]:
    """An XLCO whose every tensor differs from a fresh one's: moved key encoder, 11 keys enqueued (pointer 3)."""
    model = tiny_model(xlco_queue_size=8)
    xlco = tiny_xlco(model, seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    dim = xlco.state_dict()["queue"].shape[1]
    enqueue(xlco, model, torch.randn(5, dim))
    enqueue(xlco, model, torch.randn(6, dim), update=2)
    return xlco, model


def test_state_dict_round_trip_is_bitwise_and_restores_the_host_counters():
    source, _ = filled_xlco(seed=0)
    state = {name: t.clone() for name, t in source.state_dict().items()}
    assert (int(state["queue_pointer"]), int(state["queue_filled"])) == (3, 8)
    target = tiny_xlco(tiny_model(xlco_queue_size=8), seed=1, queue_fill="prefill")
    assert not target.is_active(1)
    target.load_state_dict(state)
    restored = target.state_dict()
    assert restored.keys() == state.keys()
    for name, tensor in state.items():
        assert torch.equal(restored[name], tensor) and restored[name].dtype == tensor.dtype, name
    assert target.is_active(1) and target.fill_fraction == 1.0  # the host mirrors follow the loaded buffers
    # The next keys go where the source's would: at slot 3.
    model = tiny_model(xlco_queue_size=8)
    for xlco in (source, target):
        enqueue(xlco, model, torch.full((1, state["queue"].shape[1]), 7.0))
    assert torch.equal(source.state_dict()["queue"], target.state_dict()["queue"])
    assert torch.equal(target.state_dict()["queue"][3], torch.full((state["queue"].shape[1],), 7.0))


def test_load_state_dict_refuses_a_state_of_another_shape_and_changes_nothing():
    xlco, _ = filled_xlco(seed=0)
    before = {name: t.clone() for name, t in xlco.state_dict().items()}
    bigger = tiny_xlco(tiny_model(xlco_queue_size=16)).state_dict()
    with pytest.raises(
        CheckpointError, match=r"tensor queue has shape \(16, \d+\) but this model needs \(8, .*--xlco_queue_size"
    ):
        xlco.load_state_dict(bigger)
    deeper = tiny_xlco(tiny_model(xlco_queue_size=8, xlco_layer=3)).state_dict()
    with pytest.raises(
        CheckpointError, match=r"holds \[.key_encoder.roberta.encoder.layer.2.*does not belong to this model"
    ):
        xlco.load_state_dict(deeper)  # a state with an extra layer: its own tensors all fit
    with pytest.raises(CheckpointError, match=r"lacks \['key_encoder.roberta.encoder.layer.1"):
        xlco.load_state_dict({k: v for k, v in before.items() if "layer.1." not in k})
    with pytest.raises(CheckpointError, match="queue_filled=9 is invalid"):
        xlco.load_state_dict({**before, "queue_filled": torch.tensor(9)})
    assert all(torch.equal(xlco.state_dict()[name], t) for name, t in before.items())


def test_checkpoint_files_round_trip_and_read_the_layout_before_the_counters_were_tensors(tmp_path):
    source, _ = filled_xlco(seed=0)
    (tmp_path / "now").mkdir()
    save_xlco_state(tmp_path / "now", source, global_step=2)
    meta = json.loads((tmp_path / "now" / "xlco_state.json").read_text())
    assert (meta["queue_pointer"], meta["queue_filled"], meta["global_step"]) == (3, 8, 2)
    target = tiny_xlco(tiny_model(xlco_queue_size=8), seed=1)
    load_xlco_state(tmp_path / "now", target)
    assert all(torch.equal(target.state_dict()[n], t) for n, t in source.state_dict().items())

    # What main wrote before: the key encoder's parameters and the queue as tensors, pointer and fill count in the
    # JSON file only.
    old = tmp_path / "old"
    old.mkdir()
    state = source.state_dict()
    tensors = {name: t.contiguous() for name, t in state.items() if not name.startswith("queue_")}
    save_file(tensors, old / "xlco_state.safetensors", metadata={"format": "pt"})
    old_meta = {"queue_pointer": 3, "queue_filled": 8, "queue_size": 8, "xlco_layer": 2, "global_step": 2}
    (old / "xlco_state.json").write_text(json.dumps(old_meta))
    from_old = tiny_xlco(tiny_model(xlco_queue_size=8), seed=1)
    load_xlco_state(old, from_old)
    assert all(torch.equal(from_old.state_dict()[n], t) for n, t in state.items())
    assert from_old.fill_fraction == 1.0

    # The two files of different saves are refused, naming both.
    (old / "xlco_state.json").write_text(json.dumps(meta | {"queue_pointer": 5}))
    save_file({n: t.contiguous() for n, t in state.items()}, old / "xlco_state.safetensors")
    with pytest.raises(CheckpointError, match="queue_pointer=5 but .*xlco_state.safetensors holds 3"):
        load_xlco_state(old, from_old)


def test_retrieval_accuracy_counts_nearest_neighbours_by_cosine_both_ways():
    from evaluation.retrieval import evaluate_retrieval, retrieval_accuracy

    source = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Target row 2 points almost along source row 0: nearest by angle, whatever the lengths.
    target = torch.tensor([[10.0, 1.0], [0.0, 3.0], [1.0, 0.1]])
    forward, backward = retrieval_accuracy(source, target)
    similarity = torch.nn.functional.normalize(source, dim=-1) @ torch.nn.functional.normalize(target, dim=-1).T
    hand_forward = sum(int(similarity[i].argmax() == i) for i in range(3)) / 3
    hand_backward = sum(int(similarity[:, j].argmax() == j) for j in range(3)) / 3
    assert (forward, backward) == (pytest.approx(hand_forward), pytest.approx(hand_backward))
    assert forward < 1.0

    model = tiny_model().eval()

    class WordTokenizer:  # maps each word to an id; enough to drive `encode`
        def __call__(self, sentences, **kwargs):
            rows = [[0] + [5 + len(w) for w in s.split()] + [2] for s in sentences]
            width = max(map(len, rows))
            ids = torch.tensor([r + [1] * (width - len(r)) for r in rows])
            return _Batch(input_ids=ids, attention_mask=ids.ne(1).long())

    class _Batch(dict):
        def to(self, device):
            return self

    identical = ["a bb ccc", "dddd e", "ff ggg hhhh ii"]
    metrics = evaluate_retrieval(model, WordTokenizer(), {"xx-xx": (identical, identical)})
    assert metrics["retrieval_acc/xx-xx"] == 1.0 and metrics["retrieval_acc"] == 1.0
