"""Resuming the data stream at its saved position: the iterator, the StatefulDataLoader with workers, the trainer
(straight 2N updates vs N + resume N), two processes under torchrun, and the errors of a position that does not fit.
"""

import itertools
import json
from pathlib import Path

import pytest
import torch
from helpers import (
    WORKERS,
    StopAfter,
    assert_same,
    corpus_dataset,
    run_torchrun,
    snapshot,
    tiny_infoxlm,
    tiny_trainer,
    write_tiny_corpus,
)
from safetensors.torch import load_file
from torchdata.stateful_dataloader import StatefulDataLoader

from trainer import DataError, InfoXLMDataCollator
from trainer.checkpoints import data_state_path
from trainer.data import SeededCollator, hf_sources, sources

SOURCES = {
    "cached": {},
    "streamed files": {"streaming": True, "shuffle_buffer_size": 7},
    "streamed 🤗 datasets": {"hf_streaming": True, "shuffle_buffer_size": 7},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(autouse=True)
def small_reader_chunks(monkeypatch):
    """Reader chunks of 16 lines instead of 1,000, so that the tiny corpus spans many chunks and shuffle windows:
    resumed streams then re-open files and 🤗 streams mid-way (DataLoader workers inherit this by fork)."""
    monkeypatch.setattr(sources, "SHARD_CHUNK", 16)
    monkeypatch.setattr(hf_sources, "SHARD_CHUNK", 16)


@pytest.mark.parametrize("source", list(SOURCES))
def test_iterator_resumes_at_its_position(corpus, tiny_tokenizer, source):
    # 700 items: several passes over every language, so positions cross epochs, segments and shuffle windows.
    straight = list(itertools.islice(iter(corpus_dataset(tiny_tokenizer, corpus, **SOURCES[source])), 700))
    first = iter(corpus_dataset(tiny_tokenizer, corpus, **SOURCES[source]))
    head = list(itertools.islice(first, 450))
    state = json.loads(json.dumps(first.state_dict()))  # what a checkpoint holds
    resumed = iter(corpus_dataset(tiny_tokenizer, corpus, **SOURCES[source]))
    resumed.load_state_dict(state)
    assert head + list(itertools.islice(resumed, 250)) == straight
    # Not a replay from the start: a fresh iterator gives other items.
    assert (
        list(itertools.islice(iter(corpus_dataset(tiny_tokenizer, corpus, **SOURCES[source])), 5)) != straight[450:455]
    )


def batches(loader, n):
    return list(itertools.islice(iter(loader), n))


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for objective in x:
            for name in x[objective]:
                assert torch.equal(x[objective][name], y[objective][name]), (objective, name)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_loader_resumes_with_workers(corpus, tiny_tokenizer, num_workers):
    def loader():
        dataset = corpus_dataset(tiny_tokenizer, corpus)
        collator = SeededCollator(InfoXLMDataCollator(tiny_tokenizer), seed=0)
        return StatefulDataLoader(dataset, batch_size=4, collate_fn=collator, num_workers=num_workers)

    straight = batches(loader(), 12)
    first = loader()
    iterator = iter(first)
    head = [next(iterator) for _ in range(7)]
    state = json.loads(json.dumps(first.state_dict()))
    resumed = loader()
    resumed.load_state_dict(state)
    assert_same_batches(head + batches(resumed, 5), straight)


def interrupted_run(tokenizer, corpus, output_dir, source=(), **args):
    """Trains 3 of 6 updates and saves checkpoint-3."""
    dataset = corpus_dataset(tokenizer, corpus, **dict(source))
    trainer = tiny_trainer(
        tokenizer, output_dir, max_steps=6, dataset=dataset, save_strategy="steps", save_steps=3, **args
    )
    trainer.add_callback(StopAfter(3))
    trainer.train()
    return output_dir / "checkpoint-3"


@pytest.mark.parametrize(
    "source, num_workers, accumulation",
    [
        ("cached", 0, 1),
        ("cached", 2, 1),
        ("cached", 0, 2),
        ("streamed files", 2, 1),
        ("streamed 🤗 datasets", 0, 1),
        ("streamed 🤗 datasets", 2, 1),
    ],
)
def test_trainer_resumes_exactly_at_the_saved_position(
    tmp_path, corpus, tiny_tokenizer, source, num_workers, accumulation
):
    data = SOURCES[source]
    args = {"dataloader_num_workers": num_workers, "gradient_accumulation_steps": accumulation}
    straight = tiny_trainer(
        tiny_tokenizer,
        tmp_path / "straight",
        max_steps=6,
        dataset=corpus_dataset(tiny_tokenizer, corpus, **data),
        **args,
    )
    straight.train()

    checkpoint = interrupted_run(tiny_tokenizer, corpus, tmp_path / "resumed", data.items(), **args)
    assert data_state_path(checkpoint, 0).is_file()
    resumed = tiny_trainer(
        tiny_tokenizer,
        tmp_path / "resumed",
        max_steps=6,
        dataset=corpus_dataset(tiny_tokenizer, corpus, **data),
        model=tiny_infoxlm(len(tiny_tokenizer), seed=123),
        **args,
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert_same(snapshot(straight), snapshot(resumed), atol=1e-6)
    assert resumed.state.log_history[-2]["epoch"] == straight.state.log_history[-2]["epoch"] == 1.0


def test_a_position_that_does_not_fit_is_refused_and_changes_nothing(tmp_path, corpus, tiny_tokenizer):
    checkpoint = interrupted_run(tiny_tokenizer, corpus, tmp_path / "run")

    def listing():
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}

    before = listing()
    cases = [
        ({}, {"seed": 5}, "data.seed: checkpoint 0, now 5"),
        ({"data_seed": 5}, {}, "masking_seed: checkpoint 0, now 5"),
        ({"dataloader_num_workers": 2}, {}, "num_workers: checkpoint 0, now 2"),
        ({"per_device_train_batch_size": 2}, {}, "batch_size: checkpoint 4, now 2"),
        ({}, {"max_seq_length": 20}, "data.max_seq_length: checkpoint 24, now 20"),
        ({}, {"objectives": ("mlm", "xlco")}, "data.objectives.tlm"),
    ]
    for args, data, message in cases:
        dataset = corpus_dataset(tiny_tokenizer, corpus, **data)
        trainer = tiny_trainer(tiny_tokenizer, tmp_path / "run", max_steps=6, dataset=dataset, **args)
        with pytest.raises(DataError, match="does not belong to this run") as error:
            trainer.train(resume_from_checkpoint=str(checkpoint))
        assert message in str(error.value) and "--ignore_data_skip" in str(error.value)
        assert listing() == before

    other_files = corpus_dataset(tiny_tokenizer, corpus, mono_data=[str(corpus / "mono" / "en.txt")])
    with pytest.raises(DataError, match=r"data.objectives.mlm.de: checkpoint \["):
        tiny_trainer(tiny_tokenizer, tmp_path / "run", max_steps=6, dataset=other_files).train(
            resume_from_checkpoint=str(checkpoint)
        )

    # A position of the old layout (every rank read the whole stream and kept one batch in R) cannot be continued.
    position = data_state_path(checkpoint, 0)
    saved = position.read_text()
    position.write_text(json.dumps({**json.loads(saved), "version": 1}))
    with pytest.raises(DataError, match="data state version 1") as error:
        tiny_trainer(
            tiny_tokenizer, tmp_path / "run", max_steps=6, dataset=corpus_dataset(tiny_tokenizer, corpus)
        ).train(resume_from_checkpoint=str(checkpoint))
    assert "\n" not in str(error.value) and "--ignore_data_skip" in str(error.value)
    position.write_text(saved)

    data_state_path(checkpoint, 0).unlink()
    with pytest.raises(DataError, match="holds no data stream position"):
        tiny_trainer(
            tiny_tokenizer, tmp_path / "run", max_steps=6, dataset=corpus_dataset(tiny_tokenizer, corpus)
        ).train(resume_from_checkpoint=str(checkpoint))


def test_ignore_data_skip_restarts_the_stream(tmp_path, corpus, tiny_tokenizer):
    checkpoint = interrupted_run(tiny_tokenizer, corpus, tmp_path / "run")
    saved = json.loads(data_state_path(checkpoint, 0).read_text())
    restarted = tiny_trainer(
        tiny_tokenizer, tmp_path / "run", max_steps=6, dataset=corpus_dataset(tiny_tokenizer, corpus, seed=9),
        save_strategy="steps", save_steps=6, ignore_data_skip=True,
    )  # fmt: skip
    restarted.train(resume_from_checkpoint=str(checkpoint))  # another data seed is fine: the stream starts over
    assert restarted.state.global_step == 6
    after = json.loads(data_state_path(tmp_path / "run" / "checkpoint-6", 0).read_text())
    # The stream read 3 batches of 4 since the resume, not 6: it restarted at the beginning.
    items = [s["loader"]["fetcher_state"]["dataset_iter_state"]["items"] for s in (saved, after)]
    assert items == [12, 12] and after["data"]["seed"] == 9


WORKER = WORKERS / "ddp_resume_worker.py"


@pytest.mark.slow
def test_two_processes_resume_exactly(tmp_path):
    result = run_torchrun(WORKER, tmp_path, port=29527, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for rank in (0, 1):
        assert data_state_path(tmp_path / "resumed" / "checkpoint-3", rank).is_file()
        straight = load_file(tmp_path / f"straight-rank{rank}.safetensors")
        resumed = load_file(tmp_path / f"resumed-rank{rank}.safetensors")
        assert_same(straight, resumed, atol=1e-6)
    # The ranks read different batches: their saved positions differ.
    positions = [json.loads(data_state_path(tmp_path / "resumed" / "checkpoint-3", r).read_text()) for r in (0, 1)]
    assert positions[0]["rank"] == [0, 2] and positions[1]["rank"] == [1, 2]
