"""
What a finished pretraining run leaves and prints: the saved config and model card state the momentum it trained
with, the card's snippet loads the model without custom code, the "Next" commands need nothing beyond a fresh clone
and the printed XNLI command works, the queue warning gives its numbers, and a second run into the same folder is
refused.
"""

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from helpers import (
    SHARED_DATA,
    assert_clean_error,
    build_tiny_tokenizer,
    listing,
    pretrain,
    pretrain_flags,
    run_command,
    tiny_trainer,
)

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


# --------------------------------------------------------------------------------------------------------------------
# A finished run, shared by the tests of what comes after it


@pytest.fixture(scope="module")
def finished_run(workspace, tmp_path_factory):
    """A finished two-update run whose queue (4,096 keys) is larger than its 40 XLCO pairs."""
    output_dir = tmp_path_factory.mktemp("finished") / "model"
    result = pretrain(*pretrain_flags(workspace, output_dir, "--xlco_queue_size", "4096"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return output_dir, result


def test_queue_larger_than_the_xlco_data_warns_with_the_numbers(finished_run):
    _, result = finished_run
    warning = re.search(
        r"The XLCO queue \(([\d,]+) keys\) is larger than the XLCO training data \(([\d,]+) translation pairs\)",
        result.stdout,
    )
    assert warning, result.stdout[-3000:]
    assert warning.groups() == ("4,096", "40")


def test_previous_run_is_refused_without_resume_or_overwrite(workspace, finished_run):
    output_dir, _ = finished_run
    before = listing(output_dir)
    result = pretrain(*pretrain_flags(workspace, output_dir))
    assert_clean_error(
        result,
        f"--output_dir {output_dir} already holds a run",
        "--overwrite_output_dir",
        "--resume_from_checkpoint True",
    )
    assert listing(output_dir) == before


def test_model_card_snippet_loads_model_and_tokenizer_without_a_prompt(finished_run, tmp_path):
    output_dir, _ = finished_run
    card = (output_dir / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1).replace("<this repo>", str(output_dir))
    snippet += "\nprint(type(model).__name__, len(tokenizer))\n"
    # A fresh interpreter outside the repository: nothing of ours is imported or registered.
    result = run_command([sys.executable, "-c", snippet], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "custom code" not in result.stdout + result.stderr
    assert result.stdout.split()[:2] == ["InfoXLMModel", str(len(build_tiny_tokenizer()))]


@pytest.mark.skipif(not (SHARED_DATA / "xnli").is_dir(), reason="needs ../shared/data/xnli beside the checkout")
def test_printed_next_xnli_command_works(finished_run):
    output_dir, result = finished_run
    (line,) = [line.strip() for line in result.stdout.splitlines() if "run_xnli.py" in line]
    command = shlex.split(line)
    assert command[:2] == ["python", "run_xnli.py"]
    # As printed, cut to a few examples so that it takes seconds.
    limits = [
        "--max_train_samples",
        "16",
        "--max_predict_samples",
        "12",
        "--num_train_epochs",
        "1",
        "--report_to",
        "none",
    ]
    xnli = run_command([sys.executable, *command[1:], *limits])
    assert xnli.returncode == 0, xnli.stdout[-3000:] + xnli.stderr[-3000:]
    results = json.loads((Path(f"{output_dir}-xnli") / "xnli_results.json").read_text())["results"]
    assert set(results) == {"en", "sw"}
