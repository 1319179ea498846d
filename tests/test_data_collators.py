"""InfoXLMDataCollator: padding, masking rates (statistically), special tokens never masked, XLCO passthrough."""

import torch
from helpers import random_sequences, within

from trainer import InfoXLMDataCollator
from trainer.data.collator import pad_sequences


def test_masking_rates(tiny_tokenizer):
    generator = torch.Generator().manual_seed(0)
    collator = InfoXLMDataCollator(tiny_tokenizer, mlm_probability=0.15, generator=generator)
    sequences = random_sequences(tiny_tokenizer, 400, 250, generator)
    batch = collator([{"mlm": {"input_ids": s}} for s in sequences])["mlm"]
    original = torch.tensor(sequences)
    labels, masked = batch["labels"], batch["input_ids"]

    maskable = original.shape[0] * (original.shape[1] - 2)
    selected = labels != -100
    n_selected = int(selected.sum())
    assert within(n_selected / maskable, 0.15, maskable)
    assert torch.equal(labels[selected], original[selected])  # labels are the original ids

    became_mask = int((masked[selected] == tiny_tokenizer.mask_token_id).sum())
    unchanged = int((masked[selected] == original[selected]).sum())
    randomized = n_selected - became_mask - unchanged
    # A random replacement can draw the original word again: it then counts as unchanged.
    regular_words = len(collator.random_ids)
    assert within(became_mask / n_selected, 0.8, n_selected)
    assert within(randomized / n_selected, 0.1 * (1 - 1 / regular_words), n_selected)
    assert within(unchanged / n_selected, 0.1 + 0.1 / regular_words, n_selected)
    # Random replacements are regular words, never special tokens.
    replaced = selected & (masked != original) & (masked != tiny_tokenizer.mask_token_id)
    assert not torch.isin(masked[replaced], torch.tensor(tiny_tokenizer.all_special_ids)).any()
    # Unselected positions are untouched.
    assert torch.equal(masked[~selected], original[~selected])


def test_special_tokens_and_padding_are_never_masked(tiny_tokenizer):
    specials = tiny_tokenizer.all_special_ids  # <s> </s> <unk> <pad> <mask>
    generator = torch.Generator().manual_seed(1)
    collator = InfoXLMDataCollator(tiny_tokenizer, mlm_probability=0.9, generator=generator)
    word = max(specials) + 1
    # Mostly special tokens, ragged lengths so that the batch gets padded.
    sequences = [[*specials, word, *specials][: 5 + i % 7] for i in range(200)]
    for _ in range(20):
        batch = collator([{"tlm": {"input_ids": s}} for s in sequences])["tlm"]
        padded, _ = pad_sequences(sequences, tiny_tokenizer.pad_token_id)
        special_positions = torch.isin(padded, torch.tensor(specials))  # includes the padding
        assert (batch["labels"][special_positions] == -100).all()
        assert torch.equal(batch["input_ids"][special_positions], padded[special_positions])
        assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
        assert (batch["labels"] != -100).any()  # the words themselves do get masked (p = 0.9)


def test_padding_and_pad_to_multiple_of(tiny_tokenizer):
    collator = InfoXLMDataCollator(tiny_tokenizer, pad_to_multiple_of=8, xlco_mask_probability=0.0)
    examples = [
        {"xlco": {"query_input_ids": [0, 5, 2], "key_input_ids": [0, 6, 7, 8, 9, 10, 11, 12, 13, 2]}},
        {"xlco": {"query_input_ids": [0, 5, 6, 7, 2], "key_input_ids": [0, 6, 2]}},
    ]
    batch = collator(examples)["xlco"]
    assert set(batch) == {"query_input_ids", "query_attention_mask", "key_input_ids", "key_attention_mask"}
    assert batch["query_input_ids"].shape == (2, 8) and batch["key_input_ids"].shape == (2, 16)
    assert batch["query_input_ids"].dtype == torch.long and batch["key_attention_mask"].dtype == torch.long
    assert batch["query_input_ids"][0].tolist() == [0, 5, 2, 1, 1, 1, 1, 1]  # <pad> = 1; XLCO masking is off here
    assert batch["query_attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert batch["key_attention_mask"].sum(1).tolist() == [10, 3]


def test_all_objectives_in_one_batch(tiny_tokenizer):
    collator = InfoXLMDataCollator(tiny_tokenizer)
    example = {
        "mlm": {"input_ids": [0, 5, 6, 2, 7, 2]},
        "tlm": {"input_ids": [0, 5, 2, 2, 30, 2]},
        "xlco": {"query_input_ids": [0, 5, 2], "key_input_ids": [0, 30, 2]},
    }
    batch = collator([example, example])
    assert set(batch) == {"mlm", "tlm", "xlco"}
    for objective in ("mlm", "tlm"):
        part = batch[objective]
        assert set(part) == {"input_ids", "attention_mask", "labels", "masked_positions"}
        assert all(part[name].shape == (2, 6) and part[name].dtype == torch.long for name in ("input_ids", "labels"))
        # The flat positions are the labelled ones, in row-major order (what boolean-mask indexing selects).
        flat = torch.arange(12).view(2, 6)[part["labels"].ne(-100)]
        assert torch.equal(part["masked_positions"], flat) and part["masked_positions"].dtype == torch.long


def test_masking_follows_the_global_rng(tiny_tokenizer):
    collator = InfoXLMDataCollator(tiny_tokenizer, mlm_probability=0.5)
    examples = [{"mlm": {"input_ids": [0, *range(5, 40), 2]}} for _ in range(4)]
    torch.manual_seed(3)
    first = collator(examples)["mlm"]
    torch.manual_seed(3)
    second = collator(examples)["mlm"]
    assert torch.equal(first["input_ids"], second["input_ids"]) and torch.equal(first["labels"], second["labels"])
