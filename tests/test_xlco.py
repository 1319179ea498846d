"""XLCO pieces against hand computations: loss, queue ring buffer, momentum schedules, key encoder EMA."""

import math

import pytest
import torch
from helpers import tiny_infoxlm

from modeling_infoxlm import InfoXLMForPreTraining
from trainer.key_encoder import KeyEncoder
from trainer.momentum import MomentumSchedule
from trainer.negative_queue import NegativeQueue
from trainer.xlco_loss import shortcut_statistics, xlco_loss

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


@pytest.mark.parametrize("batch", [2, 3, 5, 8])  # 8 divides the queue of 8; 3 and 5 do not
def test_queue_ring_buffer_matches_a_python_list_model(batch):
    size = 8
    queue = NegativeQueue(size, 2, generator=torch.Generator().manual_seed(0))
    slots = [None] * size
    pointer = filled = 0
    for step in range(7):
        keys = torch.arange(batch * 2, dtype=torch.float32).reshape(batch, 2) + 100 * step
        queue.enqueue(keys)
        for row in keys[-size:]:
            slots[pointer] = row.tolist()
            pointer = (pointer + 1) % size
        filled = min(filled + batch, size)
        assert queue.pointer == pointer and queue.filled == filled
        for index, expected in enumerate(slots):
            if expected is not None:
                assert queue.keys[index].tolist() == expected, (step, index)
        mask = queue.valid_mask()
        assert (mask is None) == (filled == size)
        if mask is not None:
            assert mask.sum().item() == filled


def test_queue_is_initialised_with_random_normal_values():
    queue = NegativeQueue(4096, 8, generator=torch.Generator().manual_seed(0))
    assert abs(queue.keys.mean().item()) < 0.05 and abs(queue.keys.std().item() - 1) < 0.05
    assert queue.filled == 0 and not queue.is_full


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


def tiny_model() -> InfoXLMForPreTraining:
    """Four layers, XLCO at layer 2: the key encoder must hold the embeddings and layers 0 and 1 only."""
    return tiny_infoxlm(50, num_hidden_layers=4, max_position_embeddings=40)


def test_key_encoder_holds_only_what_xlco_needs_and_matches_query_vectors():
    model = tiny_model().eval()
    keys = KeyEncoder(model)
    names = {name for name, _ in keys.named_parameters()}
    assert all(
        name.startswith(("roberta.embeddings.", "roberta.encoder.layer.0.", "roberta.encoder.layer.1."))
        or name == "xlco_proj.weight"
        for name in names
    )
    assert "xlco_proj.weight" in names and not any("lm_head" in n or "layer.2." in n for n in names)
    assert all(not p.requires_grad and p.dtype == torch.float32 for p in keys.parameters())
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]])
    mask = ids.ne(1).long()
    with torch.no_grad():
        assert torch.equal(keys(ids, mask), model.sentence_vector(ids, mask))
    # A copy, not a view: changing the query model leaves the keys alone.
    with torch.no_grad():
        model.xlco_proj.weight.add_(1.0)
    assert not torch.equal(keys.xlco_proj.weight, model.xlco_proj.weight)


def test_key_encoder_ema_matches_per_tensor_loop():
    model = tiny_model()
    keys = KeyEncoder(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    before = {name: p.clone() for name, p in keys.named_parameters()}
    query = dict(model.named_parameters(remove_duplicate=False))
    keys.update(model, momentum=0.9)
    for name, p in keys.named_parameters():
        expected = 0.9 * before[name] + 0.1 * query[name].detach()
        torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-6)
    keys.copy_from(model)
    for name, p in keys.named_parameters():
        assert torch.equal(p, query[name].detach())


def test_retrieval_accuracy_counts_nearest_neighbours_by_cosine_both_ways():
    from trainer.retrieval import evaluate_retrieval, retrieval_accuracy

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
