"""Helpers of the collator tests: random word sequences and a binomial tolerance."""

import math

import torch


def random_sequences(tokenizer, count, length, generator):
    """`count` sequences `<s> w w ... </s>` of random regular words (ids above the specials)."""
    first_word = max(tokenizer.all_special_ids) + 1
    words = torch.randint(first_word, len(tokenizer), (count, length), generator=generator)
    return [[tokenizer.bos_token_id, *row.tolist(), tokenizer.eos_token_id] for row in words]


def within(observed, expected, n, sigmas=5.0):
    """|observed - expected| within `sigmas` binomial standard deviations of a rate over n draws."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)
