"""run_pretrain.py end to end on ../shared/data: mono + Tatoeba train split, tiny model, real XLM-R tokenizer."""

import json

import pytest
from transformers import AutoModel

import run_pretrain


def mean(values):
    return sum(values) / len(values)


@pytest.mark.slow
def test_tiny_pretraining_run_lowers_all_three_losses_and_saves_a_loadable_model(tmp_path, shared_data):
    config = {
        "model_type": "infoxlm",
        "vocab_size": 250002,
        "hidden_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 130,
        "xlco_layer": 2,
        "xlco_queue_size": 16,
    }
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    # A single YAML config file, as users would write it.
    (tmp_path / "run.yaml").write_text(
        f"""
config_name: {tmp_path / "config"}
tokenizer_name: {shared_data / "xlmr-tokenizer"}
mono_data: [{shared_data / "mono"}]
parallel_data: [{shared_data / "tatoeba"}]
parallel_heldout_every: 5
max_seq_length: 64
output_dir: {out}
max_steps: 40
per_device_train_batch_size: 8
learning_rate: 0.005
warmup_steps: 0
logging_steps: 2
save_steps: 40
report_to: none
disable_tqdm: true
xlco_queue_fill: prefill
xlco_momentum: constant,0.99
seed: 0
"""
    )
    trainer = run_pretrain.main([str(tmp_path / "run.yaml")])
    logs = [entry for entry in trainer.state.log_history if "mlm_loss" in entry]
    assert len(logs) == 20
    for name in ("mlm_loss", "tlm_loss", "xlco_loss"):
        first, last = mean([e[name] for e in logs[:4]]), mean([e[name] for e in logs[-4:]])
        assert last < first, (name, first, last)
    model = AutoModel.from_pretrained(out)
    assert type(model).__name__ == "InfoXLMModel"
    assert (out / "checkpoint-40" / "xlco_state.safetensors").is_file()
    assert "mlm, tlm, xlco" in (out / "README.md").read_text()


def test_config_overrides_are_typed_by_field_and_derive_the_xlco_defaults():
    config = run_pretrain.load_config(
        run_pretrain.ModelArguments(
            config_overrides="num_hidden_layers=3,hidden_size=64,num_attention_heads=4,xlco_use_projection=false"
        ),
        vocab_size=100,
    )
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (3, 64, 100)
    assert config.xlco_use_projection is False
    assert (config.xlco_layer, config.xlco_projection_size) == (2, 64)  # follow the overridden depth and width
    with pytest.raises(ValueError, match="nope"):
        run_pretrain.load_config(run_pretrain.ModelArguments(config_overrides="nope=1"), vocab_size=100)


def test_built_in_demo_runs_offline_from_its_own_corpus_and_tokenizer(tmp_path, capsys):
    """The README's first command (no arguments), shortened to a few updates: CLDR corpus, tokenizer, model."""
    arguments = run_pretrain.demo_arguments(tmp_path / "demo")
    steps = arguments.index("--max_steps") + 1
    arguments[steps] = "4"
    arguments += [
        "--xlco_queue_size",
        "64",
        "--retrieval_eval_steps",
        "4",
        "--logging_steps",
        "2",
        "--disable_tqdm",
        "true",
    ]
    trainer = run_pretrain.main(arguments)

    history = trainer.state.log_history
    assert {"mlm_loss", "tlm_loss", "xlco_loss"} <= set().union(*history)
    retrieval = [entry["retrieval_acc"] for entry in history if "retrieval_acc" in entry]
    assert len(retrieval) == 2  # before the first update and after the last one
    languages = {name for entry in history for name in entry if name.startswith("retrieval_acc/en-")}
    assert len(languages) >= 30
    model = AutoModel.from_pretrained(tmp_path / "demo" / "model")
    assert model.config.model_type == "infoxlm" and model.config.num_hidden_layers == 3
    report = capsys.readouterr().out
    assert "retrieval_acc" in report and str(tmp_path / "demo" / "model") in report
