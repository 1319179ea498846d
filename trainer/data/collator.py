"""Batching pretraining examples into model-ready tensors: dynamic padding and MLM/TLM masking.

Hand-written rather than transformers' `DataCollatorForLanguageModeling`, whose masking draws random replacements
from the whole vocabulary, special tokens included (fairseq's, the reference's, never draws a special token), and
finds special tokens with a Python loop per row; our examples are already id lists, so padding is one numpy fill.

`SeededCollator` runs a collator under a seed derived from the batch's position in the stream (below).
"""

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import get_worker_info


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int, pad_to_multiple_of: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence (rounded up to a multiple of `pad_to_multiple_of`).

    Returns input_ids (B, T) and attention_mask (B, T), both int64; the mask is 1 on real tokens.
    """
    lengths = [len(s) for s in sequences]
    width = max(lengths, default=0)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    for row, (ids, n) in enumerate(zip(sequences, lengths)):
        input_ids[row, :n] = ids
    attention_mask = np.arange(width)[None, :] < np.array(lengths, dtype=np.int64)[:, None]
    return torch.from_numpy(input_ids), torch.from_numpy(attention_mask.astype(np.int64))


def mask_tokens(
    input_ids: torch.Tensor,
    special_ids: torch.Tensor,
    mask_id: int,
    random_ids: torch.Tensor,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: select each non-special token with probability `mlm_probability`; of the selected tokens
    80% become <mask>, 10% a random token, 10% stay unchanged.

    input_ids: (B, T) int64, not modified. special_ids: (S,) ids never selected (specials incl. <pad>).
    random_ids: (V',) the ids a random replacement is drawn from (the vocabulary minus special tokens).
    Returns (masked input_ids (B, T), labels (B, T)): labels hold the original id at selected positions, -100
    elsewhere.
    """
    selectable = ~torch.isin(input_ids, special_ids)
    probabilities = torch.full(input_ids.shape, mlm_probability) * selectable
    selected = torch.bernoulli(probabilities, generator=generator).bool()
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))

    masked = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & selected
    masked[to_mask] = mask_id
    # Half of the remaining 20% get a random token, the other half stay as they are.
    to_randomize = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & selected & ~to_mask
    picks = torch.randint(len(random_ids), input_ids.shape, generator=generator)
    masked[to_randomize] = random_ids[picks[to_randomize]]
    return masked, labels


class InfoXLMDataCollator:
    """Collates combined pretraining examples (one per item of `build_pretraining_dataset`) into tensors.

    Input: a list of dicts with any of the keys
        "mlm":  {"input_ids": list[int]}
        "tlm":  {"input_ids": list[int]}
        "xlco": {"query_input_ids": list[int], "key_input_ids": list[int]}
    Output (LongTensors, only for the keys present; B = len(examples), T = longest in the batch):
        "mlm", "tlm": {"input_ids" (B, T), "attention_mask" (B, T), "labels" (B, T), "masked_positions" (M,)}
            (masked as in mask_tokens; `masked_positions`: the M labelled positions as flat indices into B * T)
        "xlco": {"query_input_ids" (B, Tq), "query_attention_mask" (B, Tq),
                 "key_input_ids" (B, Tk), "key_attention_mask" (B, Tk)}
            masked like MLM inputs with `xlco_mask_probability` (default: `mlm_probability`; 0 = not masked), no
            labels: the reference masks XLCO inputs as noise. It masks each sentence before the mixup concatenation;
            we mask the concatenated side, which is the same distribution for per-token masking, and never touch
            special tokens (so the `<s>` whose state is the sentence vector stays).

    Masking draws from torch's global RNG (which `SeededCollator` seeds per batch), or from `generator`.
    """

    def __init__(
        self,
        tokenizer,
        mlm_probability: float = 0.15,
        pad_to_multiple_of: int | None = None,
        generator: torch.Generator | None = None,
        xlco_mask_probability: float | None = None,
    ):
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a mask token and a pad token for MLM/TLM masking.")
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be between 0 and 1, got {mlm_probability}.")
        if xlco_mask_probability is None:
            xlco_mask_probability = mlm_probability
        if not 0.0 <= xlco_mask_probability < 1.0:
            raise ValueError(f"xlco_mask_probability must be in [0, 1), got {xlco_mask_probability}.")
        self.tokenizer = tokenizer
        self.mlm_probability = mlm_probability
        self.xlco_mask_probability = xlco_mask_probability
        self.pad_to_multiple_of = pad_to_multiple_of
        self.generator = generator
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        special = sorted(set(tokenizer.all_special_ids) | {self.pad_id})
        self.special_ids = torch.tensor(special, dtype=torch.long)
        vocab = torch.arange(len(tokenizer))
        self.random_ids = vocab[~torch.isin(vocab, self.special_ids)]

    def _masked(self, sequences: list[list[int]]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_sequences(sequences, self.pad_id, self.pad_to_multiple_of)
        input_ids, labels = mask_tokens(
            input_ids, self.special_ids, self.mask_id, self.random_ids, self.mlm_probability, self.generator
        )
        # The labelled positions as flat indices, computed here on the host: the model selects them without reading
        # the device (a boolean mask would make the GPU step wait for its values; see `masked_lm_logits_and_loss`).
        masked_positions = labels.ne(-100).flatten().nonzero().squeeze(1)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "masked_positions": masked_positions,
        }

    def __call__(self, examples: list[dict]) -> dict[str, dict[str, torch.Tensor]]:
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        # `example_index` is the item's stream position (PretrainingDataset), not an objective: SeededCollator seeds
        # from it; collated directly, it is ignored.
        objectives = set(examples[0]) - {"example_index"}
        if any(set(example) - {"example_index"} != objectives for example in examples):
            raise ValueError(f"all examples of a batch need the same objectives, got {[sorted(e) for e in examples]}")
        batch = {}
        for objective in ("mlm", "tlm"):
            if objective in objectives:
                batch[objective] = self._masked([example[objective]["input_ids"] for example in examples])
        if "xlco" in objectives:
            xlco = {}
            for side in ("query", "key"):
                ids, mask = pad_sequences(
                    [example["xlco"][f"{side}_input_ids"] for example in examples],
                    self.pad_id,
                    self.pad_to_multiple_of,
                )
                if self.xlco_mask_probability > 0:
                    ids, _ = mask_tokens(
                        ids,
                        self.special_ids,
                        self.mask_id,
                        self.random_ids,
                        self.xlco_mask_probability,
                        self.generator,
                    )
                xlco[f"{side}_input_ids"], xlco[f"{side}_attention_mask"] = ids, mask
            batch["xlco"] = xlco
        unknown = objectives - {"mlm", "tlm", "xlco"}
        if unknown:
            raise ValueError(f"unknown objectives {sorted(unknown)}; expected 'mlm', 'tlm' and/or 'xlco'.")
        return batch


class SeededCollator:
    """
    Collation whose randomness depends only on the batch's position in the stream, so that resuming is exact.

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
