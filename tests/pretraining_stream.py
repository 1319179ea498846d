"""A tiny deterministic stream of combined pretraining examples, and a tiny trainer on it, for the trainer tests."""

import random

import torch
from torch.utils.data import IterableDataset

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer import InfoXLMDataCollator, InfoXLMTrainer, InfoXLMTrainingArguments


class SyntheticPretrainingStream(IterableDataset):
    """Infinite `{"mlm", "tlm", "xlco"}` examples over word ids 5..vocab-1 (XLM-R specials below), seeded."""

    def __init__(self, vocab_size: int, seed: int = 0, objectives=("mlm", "tlm", "xlco")):
        self.vocab_size, self.seed, self.objectives = vocab_size, seed, objectives

    def __iter__(self):
        rng = random.Random(self.seed)

        def sentence():
            return [rng.randrange(5, self.vocab_size) for _ in range(rng.randrange(3, 9))]

        while True:
            a, b = sentence(), sentence()
            example = {
                "mlm": {"input_ids": [0, *a, 2, *b, 2]},
                "tlm": {"input_ids": [0, *a, 2, 2, *b, 2]},
                "xlco": {"query_input_ids": [0, *a, 2], "key_input_ids": [0, *a[::-1], 2]},
            }
            yield {name: example[name] for name in self.objectives}

    def xlco_fill_dataset(self) -> "SyntheticPretrainingStream":
        """The queue-fill stream: XLCO examples under another seed (as `PretrainingDataset.xlco_fill_dataset`)."""
        return SyntheticPretrainingStream(self.vocab_size, seed=self.seed + 1_000_003, objectives=("xlco",))


def tiny_infoxlm(vocab_size: int, seed: int = 0, **overrides) -> InfoXLMForPreTraining:
    torch.manual_seed(seed)
    config = InfoXLMConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        xlco_layer=2,
        **{"xlco_queue_size": 16, **overrides},
    )
    return InfoXLMForPreTraining(config)


def tiny_trainer(tokenizer, output_dir, max_steps=4, model=None, stream_seed=0, **args) -> InfoXLMTrainer:
    defaults = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        xlco_queue_fill="masked",
    )
    training_args = InfoXLMTrainingArguments(**{**defaults, **args})
    model = model or tiny_infoxlm(len(tokenizer))
    return InfoXLMTrainer(
        model=model,
        args=training_args,
        train_dataset=SyntheticPretrainingStream(
            len(tokenizer), seed=stream_seed, objectives=training_args.objective_list
        ),
        data_collator=InfoXLMDataCollator(tokenizer),
    )
