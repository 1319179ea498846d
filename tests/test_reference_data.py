"""What the model is trained on, as in the reference: masked XLCO inputs, TLM in both directions, a queue filled
from a pass independent of the training order, and dropout 0 when continuing a checkpoint."""

import itertools

import pytest
import torch
from helpers import random_sequences, save_tiny_checkpoint, tiny_infoxlm, within
from transformers import TrainerCallback

from trainer import (
    XLCO,
    DataArguments,
    InfoXLMDataCollator,
    InfoXLMTrainer,
    InfoXLMTrainingArguments,
    build_pretraining_dataset,
)
from trainer.data.collator import pad_sequences


def xlco_examples(tokenizer, count, length, generator):
    queries = random_sequences(tokenizer, count, length, generator)
    keys = random_sequences(tokenizer, count, length + 3, generator)  # ragged: the key side is padded wider
    return [{"xlco": {"query_input_ids": q, "key_input_ids": k}} for q, k in zip(queries, keys)]


@pytest.mark.parametrize("probability", [0.15, 0.3])
def test_xlco_inputs_are_masked_like_mlm_on_both_sides_without_labels(tiny_tokenizer, probability):
    generator = torch.Generator().manual_seed(0)
    examples = xlco_examples(tiny_tokenizer, 300, 60, generator)
    collator = InfoXLMDataCollator(tiny_tokenizer, xlco_mask_probability=probability, generator=generator)
    batch = collator(examples)["xlco"]
    assert set(batch) == {"query_input_ids", "query_attention_mask", "key_input_ids", "key_attention_mask"}
    specials = torch.tensor(tiny_tokenizer.all_special_ids)
    for side in ("query", "key"):
        original, _ = pad_sequences([e["xlco"][f"{side}_input_ids"] for e in examples], tiny_tokenizer.pad_token_id)
        masked, attention = batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"]
        words = ~torch.isin(original, specials)
        changed = masked != original
        became_mask = masked == tiny_tokenizer.mask_token_id
        # Selected = became <mask> (80%), got a random word (10%) or stayed (10%, invisible): 0.9·p visibly.
        n = int(words.sum())
        assert within(int(became_mask.sum()) / n, 0.8 * probability, n)
        assert not changed[~words].any()  # specials (<s> first of all) and padding are never touched
        assert (masked[:, 0] == tiny_tokenizer.bos_token_id).all()
        assert torch.equal(attention, original.ne(tiny_tokenizer.pad_token_id).long())


def test_xlco_masking_defaults_to_the_mlm_probability_and_zero_turns_it_off(tiny_tokenizer):
    assert InfoXLMDataCollator(tiny_tokenizer, mlm_probability=0.2).xlco_mask_probability == 0.2
    assert DataArguments(mlm_probability=0.2).xlco_mask_probability == 0.2
    generator = torch.Generator().manual_seed(0)
    examples = xlco_examples(tiny_tokenizer, 50, 20, generator)
    batch = InfoXLMDataCollator(tiny_tokenizer, xlco_mask_probability=0.0)(examples)["xlco"]
    original, _ = pad_sequences([e["xlco"]["key_input_ids"] for e in examples], tiny_tokenizer.pad_token_id)
    assert torch.equal(batch["key_input_ids"], original)
    with pytest.raises(ValueError, match="xlco_mask_probability"):
        DataArguments(xlco_mask_probability=1.0)


# ---- TLM directions --------------------------------------------------------------------------------------------


def parallel_files(directory, pairs: int, tokenizer):
    """`pairs` translation pairs t.fr-en.{fr,en}; pair i is identified by its words (3 digits in base 5)."""
    en, fr = "the cat dog sat mat".split(), "le chat chien sur tapis".split()
    digits = list(itertools.product(range(5), repeat=3))[:pairs]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "t.fr-en.fr").write_text("".join(" ".join(fr[d] for d in ds) + "\n" for ds in digits))
    (directory / "t.fr-en.en").write_text("".join(" ".join(en[d] for d in ds) + "\n" for ds in digits))
    return {tuple(tokenizer(" ".join(en[d] for d in ds), add_special_tokens=False)["input_ids"]) for ds in digits}


def test_tlm_uses_both_directions_by_a_seeded_coin(tmp_path, tiny_tokenizer):
    english = parallel_files(tmp_path / "para", 100, tiny_tokenizer)
    args = DataArguments(
        parallel_data=[str(tmp_path / "para")], max_seq_length=32, data_cache_dir=str(tmp_path / "cache")
    )
    dataset, _ = build_pretraining_dataset(args, tiny_tokenizer, ["tlm"], seed=3)
    first_is_english = []
    for example in itertools.islice(iter(dataset), 2000):
        ids = example["tlm"]["input_ids"]
        first = tuple(ids[1 : ids.index(tiny_tokenizer.eos_token_id)])
        first_is_english.append(first in english)
    assert within(sum(first_is_english) / 2000, 0.5, 2000)
    again, _ = build_pretraining_dataset(args, tiny_tokenizer, ["tlm"], seed=3)
    assert [e["tlm"] for e in itertools.islice(iter(again), 200)] == [
        e["tlm"] for e in itertools.islice(iter(dataset), 200)
    ]
    args.tlm_both_directions = False
    one_way, _ = build_pretraining_dataset(args, tiny_tokenizer, ["tlm"], seed=3)
    for example in itertools.islice(iter(one_way), 200):
        ids = example["tlm"]["input_ids"]
        assert tuple(ids[1 : ids.index(tiny_tokenizer.eos_token_id)]) not in english  # always fr first


# ---- queue fill -------------------------------------------------------------------------------------------------


class KeyInputs(TrainerCallback):
    """Key-encoder inputs (as sentence tuples) before training starts (the fill) and during the first updates."""

    def __init__(self, trainer, eos):
        self.fill, self.training, self.phase, self.eos = [], [], "fill", eos
        trainer.xlco.register_forward_hook(self.hook)

    def on_train_begin(self, args, state, control, **kwargs):
        self.phase = "train"

    def hook(self, module, inputs, output):
        batch = []
        for row in inputs[0].tolist():
            sentences = [tuple(s) for s in split_sentences(row, self.eos)]
            batch.append(sentences)
        (self.fill if self.phase == "fill" else self.training).append(batch)


def split_sentences(ids, eos):
    sentences, current = [], []
    for token in ids[1:]:
        if token == eos:
            if current:
                sentences.append(current)
            current = []
        elif token != 1:  # padding
            current.append(token)
    return sentences


def test_prefill_does_not_put_the_first_updates_positives_in_the_queue(tmp_path, tiny_tokenizer):
    parallel_files(tmp_path / "para", 120, tiny_tokenizer)
    data_args = DataArguments(
        parallel_data=[str(tmp_path / "para")],
        max_seq_length=32,
        data_cache_dir=str(tmp_path / "cache"),
        xlco_mask_probability=0.0,  # whole sentences, so that they can be recognised
    )
    dataset, _ = build_pretraining_dataset(data_args, tiny_tokenizer, ["xlco"], seed=0)
    queue, batch = 16, 4
    training_args = InfoXLMTrainingArguments(
        output_dir=str(tmp_path / "out"),
        objectives="xlco",
        max_steps=queue // batch,
        per_device_train_batch_size=batch,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        xlco_queue_fill="prefill",
    )
    trainer = InfoXLMTrainer(
        model=tiny_infoxlm(len(tiny_tokenizer), xlco_queue_size=queue),
        args=training_args,
        train_dataset=dataset,
        data_collator=InfoXLMDataCollator(tiny_tokenizer, xlco_mask_probability=0.0),
    )
    record = KeyInputs(trainer, tiny_tokenizer.eos_token_id)
    trainer.add_callback(record)
    trainer.train()
    assert len(record.fill) == queue // batch + XLCO.PREFILL_EXTRA_BATCHES  # the reference's count
    in_queue = {s for rows in record.fill[-queue // batch :] for row in rows for s in row}  # the last 16 keys
    positives = [s for rows in record.training[: queue // batch] for row in rows for s in row]
    shared = sum(s in in_queue for s in positives) / len(positives)
    # Filling from the training stream itself made this 1.0: every positive's twin key sat in the queue.
    # By chance: 32 of the 240 sentences are in the queue, about 13%.
    assert shared < 0.4, shared


# ---- dropout when continuing a checkpoint -----------------------------------------------------------------------


def test_config_overrides_apply_to_model_name_or_path(tmp_path, tiny_tokenizer):
    from modeling_infoxlm import InfoXLMForPreTraining
    from run_pretrain import ModelArguments, load_config

    checkpoint = save_tiny_checkpoint("xlm-roberta", tmp_path / "xlmr", tiny_tokenizer)
    model_args = ModelArguments(
        model_name_or_path=str(checkpoint), config_overrides="hidden_dropout_prob=0,attention_probs_dropout_prob=0"
    )
    config = load_config(model_args, len(tiny_tokenizer))
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob) == (0.0, 0.0)
    model = InfoXLMForPreTraining.from_pretrained(checkpoint, config=config).train()
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.0 for m in dropouts)
    ids = torch.tensor([[0, 5, 6, 7, 8, 2]])
    assert torch.equal(model.roberta(ids).last_hidden_state, model.roberta(ids).last_hidden_state)  # train mode
    default = InfoXLMForPreTraining.from_pretrained(checkpoint).train()
    assert default.config.hidden_dropout_prob == 0.1  # the checkpoint's own value without the override
    with pytest.raises(ValueError):
        load_config(ModelArguments(model_name_or_path=str(checkpoint), config_overrides="no_such_field=1"), 10)
