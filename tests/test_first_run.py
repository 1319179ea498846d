"""The demo's first run: its saved config states the momentum it trained with, and its "Next" commands need nothing
beyond a fresh clone."""

import json

from pretraining_stream import tiny_trainer

import run_pretrain


def test_saved_config_and_model_card_state_the_momentum_that_trained(tmp_path, tiny_tokenizer):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=1, xlco_momentum="constant,0.99")
    assert trainer.model.config.xlco_momentum == 0.99  # the config's default is 0.9999
    trainer.train()
    trainer.save_model(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["xlco_momentum"] == 0.99
    trainer.args.output_dir = str(tmp_path / "model")
    trainer.create_model_card()
    assert "momentum constant,0.99" in (tmp_path / "model" / "README.md").read_text()

    linear = tiny_trainer(tiny_tokenizer, tmp_path / "linear", max_steps=1, xlco_momentum="linear,0,10,0.9,0.999")
    assert linear.model.config.xlco_momentum == 0.999  # where the schedule settles


def test_demo_next_commands_need_only_a_fresh_clone():
    report = run_pretrain.run_report([], "outputs/demo/model", demo=True, positions=128)
    commands = [line.strip() for line in report.splitlines()[report.splitlines().index("Next:") + 1 :]]
    assert "shared" not in report
    assert any(c.startswith("python run_retrieval.py") and "outputs/demo/corpus/heldout" in c for c in commands)
    assert any("--sentence_transformer" in c for c in commands)
    assert any("run_xnli.py" in c and "--dataset_name xnli" in c for c in commands)
