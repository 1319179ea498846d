"""
Fail-safe scripts, configs and checkpoints (issue 23): every refusal of `run_pretrain.py`, `run_xnli.py`,
`run_retrieval.py` and the export CLI is one line naming the argument, file or checkpoint and the fix, exit status 2,
no traceback, and nothing written or deleted (files on disk are compared before and after); one output-folder rule
for every script; one rule for damaged checkpoints; every corpus a folder offers is used or named in an error.

The refusals happen before any model is built, so most cases run in-process (the script run as `__main__`, which is
what the command line runs) and take well under a second each; a subprocess of run_pretrain.py and of run_xnli.py
checks that the command line gives the same exit status and line.
"""

import hashlib
import importlib.util
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, WORDS, pretrain_flags
from safetensors.torch import save_file

from trainer import DataArguments, DataError, build_pretraining_dataset
from trainer.checkpoints import CheckpointError, check_checkpoint, resolve_resume_checkpoint
from trainer.data import find_mono_corpora, find_parallel_corpora
from trainer.output_folder import (
    OutputFolderError,
    check_output_folder,
    previous_run_files,
    remove_previous_run,
)

XLCO_FILES = ("xlco_state.safetensors", "xlco_state.json")


def snapshot(folder: Path) -> dict:
    """Every file and folder under `folder` with a hash of its content: what "nothing written or deleted" compares."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(folder.rglob("*"))
        if not path.is_symlink()
    }


def fake_checkpoint(folder: Path, step: int, missing: tuple[str, ...] = ()) -> Path:
    """A checkpoint folder with every file an exact XLCO resume needs (tiny contents), less `missing`."""
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    save_file({"weight": torch.zeros(2)}, folder / "model.safetensors")
    save_file({"queue": torch.zeros(2)}, folder / "xlco_state.safetensors")
    (folder / "xlco_state.json").write_text("{}")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({}, folder / name)  # a torch zip archive; never loaded here
    for name in missing:
        (folder / name).unlink()
    return folder


@pytest.fixture(scope="module")
def workspace(workspace) -> Path:
    """The tiny workspace (conftest.py) plus another tokenizer, a model folder without a tokenizer, config files,
    previous runs and checkpoints that cannot be resumed."""
    root = workspace
    (root / "no_tokenizer").mkdir()  # a model folder as save_pretrained writes it, without the tokenizer
    shutil.copy(root / "config" / "config.json", root / "no_tokenizer" / "config.json")
    save_file({"weight": torch.zeros(2)}, root / "no_tokenizer" / "model.safetensors")
    unmasked = json.loads((root / "tokenizer" / "tokenizer_config.json").read_text())
    shutil.copytree(root / "tokenizer", root / "no_mask_tokenizer")
    unmasked.pop("mask_token", None)
    (root / "no_mask_tokenizer" / "tokenizer_config.json").write_text(json.dumps(unmasked))
    configs = {
        "list.yaml": "- output_dir: x\n- max_steps: 2\n",
        "scalar.yaml": "42\n",
        "empty.yaml": "",
        "broken.yaml": "output_dir: [out\nmax_steps: 2\n",
        "broken.json": '{"output_dir": "out",, "max_steps": 2}',
        "word_as_number.yaml": f"output_dir: {root / 'new'}\nlearning_rate: fast\n",
    }
    for name, text in configs.items():
        (root / name).write_text(text)
    # A previous pretraining run (what --overwrite_output_dir would replace) and one of run_xnli.py.
    previous = root / "previous"
    fake_checkpoint(previous / "checkpoint-2", 2)
    (previous / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    shutil.copy(previous / "checkpoint-2" / "model.safetensors", previous / "model.safetensors")
    (root / "previous_xnli" / "predictions").mkdir(parents=True)
    (root / "previous_xnli" / "xnli_results.json").write_text("{}")
    (root / "previous_xnli" / "predictions" / "en.test.tsv").write_text("premise\n")
    # Runs whose only checkpoint cannot be resumed exactly.
    fake_checkpoint(root / "no_weights" / "checkpoint-2", 2, missing=("model.safetensors",))
    fake_checkpoint(root / "no_optimizer" / "checkpoint-2", 2, missing=("optimizer.pt",))
    (root / "a_file").write_text("not a folder")
    return root


OVERWRITE = ("--overwrite_output_dir", "true")
MISSING_OPTIMIZER = "galore_adamw"  # its package (galore_torch) is not a dependency

# id: (script, arguments from (workspace, output_dir), fragments the one error line holds)
PRETRAIN_CASES = {
    "batch size 0": (lambda w, o: pretrain_flags(w, w / "previous", "--per_device_train_batch_size", "0", *OVERWRITE),
                     ["--per_device_train_batch_size 0", "at least 1"]),
    "negative learning rate": (lambda w, o: pretrain_flags(w, w / "previous", "--learning_rate=-1e-3", *OVERWRITE),
                               ["--learning_rate -0.001", "positive"]),
    "negative learning rate, argparse": (lambda w, o: pretrain_flags(w, o, "--learning_rate", "-1e-3"),
                                         ["--learning_rate=-1e-3"]),
    "accumulation 0": (lambda w, o: pretrain_flags(w, w / "previous", "--gradient_accumulation_steps", "0", *OVERWRITE),
                       ["--gradient_accumulation_steps 0", "at least 1"]),
    "optimizer package missing": (lambda w, o: pretrain_flags(w, w / "previous", "--optim", MISSING_OPTIMIZER,
                                                             *OVERWRITE), [f"--optim {MISSING_OPTIMIZER}", "install"]),
    "max_steps missing": (lambda w, o: pretrain_flags(w, o, drop=("--max_steps",)), ["--max_steps", "endless"]),
    "config file: a list": (lambda w, o: [str(w / "list.yaml")], ["list.yaml: holds a list", "name: value"]),
    "config file: a scalar": (lambda w, o: [str(w / "scalar.yaml")], ["scalar.yaml: holds a single value (42)"]),
    "config file: empty": (lambda w, o: [str(w / "empty.yaml")], ["empty.yaml: the file is empty"]),
    "config file: bad YAML": (lambda w, o: [str(w / "broken.yaml")], ["broken.yaml: line", "not valid YAML"]),
    "config file: bad JSON": (lambda w, o: [str(w / "broken.json")], ["broken.json: line 1: not valid JSON"]),
    "config file: a word as a number": (lambda w, o: [str(w / "word_as_number.yaml")],
                                        ["word_as_number.yaml: learning_rate: 'fast' is not a number"]),
    "tokenizer without mask token": (lambda w, o: pretrain_flags(w, o, "--tokenizer_name", str(w / "no_mask_tokenizer")),
                                     ["no_mask_tokenizer: the tokenizer has no mask token"]),
    "model folder without tokenizer": (
        lambda w, o: pretrain_flags(w, o, "--model_name_or_path", str(w / "no_tokenizer"), drop=("--tokenizer_name",
                                                                                                "--config_name")),
        ["--model_name_or_path", "no_tokenizer: no tokenizer files there", "--tokenizer_name"]),
    "resume: newest checkpoint lacks the weights": (
        lambda w, o: pretrain_flags(w, w / "no_weights", "--resume_from_checkpoint", "True"),
        ["--resume_from_checkpoint True", "checkpoint-2: it lacks model.safetensors"]),
    "resume: checkpoint lacks optimizer.pt": (
        lambda w, o: pretrain_flags(w, o, "--resume_from_checkpoint", str(w / "no_optimizer" / "checkpoint-2")),
        ["checkpoint-2 is incomplete: it lacks optimizer.pt", "start a new run"]),
    "output_dir is a file": (lambda w, o: pretrain_flags(w, w / "a_file"), ["--output_dir", "a_file: is a file"]),
    "output_dir is the config read": (lambda w, o: pretrain_flags(w, w / "config"),
                                      ["is the folder that --config_name reads"]),
    "overwrite would delete the config read": (
        lambda w, o: pretrain_flags(w, w / "previous", "--config_name", str(w / "previous" / "checkpoint-2"),
                                   *OVERWRITE),
        ["--config_name", "lies in", "checkpoint-2, which --overwrite_output_dir would delete"]),
    "config override of the wrong type": (lambda w, o: pretrain_flags(w, o, "--config_overrides", "num_hidden_layers=abc"),
                                          ["--config_overrides: num_hidden_layers='abc'", "an integer"]),
    "config override of no field": (lambda w, o: pretrain_flags(w, o, "--config_overrides", "layers=2"),
                                    ["--config_overrides: 'layers' is not a field"]),
}  # fmt: skip


def xnli_args(w: Path, model: Path, output_dir: Path, data: Path, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model), "--test_files", str(data), "--do_predict", "--report_to", "none",
            "--output_dir", str(output_dir), *extra]  # fmt: skip


XNLI_CASES = {
    "second run": (lambda w, m, o, d: xnli_args(w, m, w / "previous_xnli", d),
                   ["previous_xnli already holds a run (predictions, xnli_results.json)", "--overwrite_output_dir"]),
    "output_dir is the model": (lambda w, m, o, d: xnli_args(w, m, m, d, "--overwrite_output_dir", "true"),
                                ["is the folder that --model_name_or_path reads"]),
    "batch size 0": (lambda w, m, o, d: xnli_args(w, m, o, d, "--per_device_eval_batch_size", "0"),
                     ["--per_device_eval_batch_size 0"]),
    "negative learning rate": (lambda w, m, o, d: xnli_args(w, m, o, d, "--do_train", "--learning_rate=-1e-3"),
                               ["--learning_rate -0.001"]),
    "model folder without tokenizer": (lambda w, m, o, d: xnli_args(w, w / "no_tokenizer", o, d),
                                       ["no_tokenizer: no tokenizer files there", "--tokenizer_name"]),
    "config file: a list": (lambda w, m, o, d: [str(w / "list.yaml")], ["list.yaml: holds a list"]),
    "model folder missing": (lambda w, m, o, d: xnli_args(w, w / "no" / "such" / "model", o, d),
                             ["--model_name_or_path", "model: no such folder", "or a Hub id"]),
    "resume: checkpoint lacks optimizer.pt": (
        lambda w, m, o, d: xnli_args(w, m, w / "no_optimizer", d, "--do_train", "--resume_from_checkpoint",
                                     str(w / "no_optimizer" / "checkpoint-2")),
        ["checkpoint-2 is incomplete: it lacks optimizer.pt"]),
}  # fmt: skip

RETRIEVAL_CASES = {
    "config file: a scalar": (lambda w, m: [str(w / "scalar.yaml")], ["scalar.yaml: holds a single value"]),
    "output_dir is the model": (
        lambda w, m: ["--model_name_or_path", str(m), "--tatoeba_dir", str(w), "--output_dir", str(m),
                      "--overwrite_output_dir"], ["is the folder that --model_name_or_path reads"]),
    "model folder without tokenizer": (
        lambda w, m: ["--model_name_or_path", str(w / "no_tokenizer"), "--tatoeba_dir", str(w),
                      "--output_dir", str(w / "retrieval_out")], ["no_tokenizer: no tokenizer files there"]),
}  # fmt: skip


def run_as_main(script: str, argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Runs `script` as the command line does (`__main__`), in this process; returns (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [script, *argv])
    monkeypatch.delenv("INFOXLM_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / script), run_name="__main__")
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def assert_refused(code: int, out: str, err: str, script: str, fragments: list[str]) -> None:
    """Exit status 2, no traceback, and stderr ends with one `<script>: error: ...` line holding every fragment."""
    assert code == 2, (code, err[-3000:])
    assert "Traceback" not in out + err, err[-3000:]
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err[-3000:]
    assert errors[0].startswith(f"{script}: error: "), errors[0]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


def refuse(script, argv, workspace, monkeypatch, capsys, fragments) -> None:
    """A refusal that writes and deletes nothing anywhere under the workspace."""
    before = snapshot(workspace)
    code, out, err = run_as_main(script, argv, monkeypatch, capsys)
    assert_refused(code, out, err, script, fragments)
    assert snapshot(workspace) == before


@pytest.mark.parametrize("case", list(PRETRAIN_CASES))
def test_run_pretrain_refuses_in_one_line_and_touches_nothing(case, workspace, monkeypatch, capsys):
    if case == "optimizer package missing" and importlib.util.find_spec("galore_torch") is not None:
        pytest.skip("galore_torch is installed here")
    arguments, fragments = PRETRAIN_CASES[case]
    refuse("run_pretrain.py", arguments(workspace, workspace / "new"), workspace, monkeypatch, capsys, fragments)


@pytest.mark.parametrize("case", list(XNLI_CASES))
def test_run_xnli_refuses_in_one_line_and_touches_nothing(
    case, workspace, tiny_infoxlm_checkpoint, tiny_xnli_dir, monkeypatch, capsys
):
    arguments, fragments = XNLI_CASES[case]
    argv = arguments(workspace, tiny_infoxlm_checkpoint, workspace / "new", tiny_xnli_dir)
    before = snapshot(tiny_infoxlm_checkpoint)
    refuse("run_xnli.py", argv, workspace, monkeypatch, capsys, fragments)
    assert snapshot(tiny_infoxlm_checkpoint) == before


@pytest.mark.parametrize("case", list(RETRIEVAL_CASES))
def test_run_retrieval_refuses_in_one_line_and_touches_nothing(
    case, workspace, tiny_infoxlm_checkpoint, monkeypatch, capsys
):
    arguments, fragments = RETRIEVAL_CASES[case]
    before = snapshot(tiny_infoxlm_checkpoint)
    refuse(
        "run_retrieval.py", arguments(workspace, tiny_infoxlm_checkpoint), workspace, monkeypatch, capsys, fragments
    )
    assert snapshot(tiny_infoxlm_checkpoint) == before


def test_export_cli_refuses_a_file_or_the_checkpoint_as_output(workspace, tiny_infoxlm_checkpoint, capsys):
    from modeling_infoxlm.export import main

    before = snapshot(workspace), snapshot(tiny_infoxlm_checkpoint)
    for output, fragment in ((workspace / "a_file", "a_file: is a file"), (tiny_infoxlm_checkpoint, "checkpoint")):
        with pytest.raises(SystemExit) as exited:
            main([str(tiny_infoxlm_checkpoint), str(output)])
        err = capsys.readouterr().err
        assert exited.value.code == 2 and fragment in err.splitlines()[-1], err
    assert (snapshot(workspace), snapshot(tiny_infoxlm_checkpoint)) == before


def test_yaml_numbers_in_exponent_notation_are_numbers(tmp_path):
    """PyYAML reads `1e-3` as text (YAML 1.1); the config file gives the same arguments as the flags."""
    import run_pretrain

    config = tmp_path / "run.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nlearning_rate: 1e-3\nmax_steps: '20'\nwarmup_steps: 2\n")
    flags = ["--output_dir", str(tmp_path / "out"), "--learning_rate", "1e-3", "--max_steps", "20"]
    from_file, from_flags = (
        run_pretrain.parse_args([str(config)])[2],
        run_pretrain.parse_args([*flags, "--warmup_steps", "2"])[2],
    )
    assert (from_file.learning_rate, from_file.max_steps, from_file.warmup_steps) == (0.001, 20, 2)
    assert (from_file.learning_rate, from_file.max_steps) == (from_flags.learning_rate, from_flags.max_steps)


@pytest.mark.parametrize(
    "script, arguments, fragment",
    [
        ("run_pretrain.py", lambda w, m, d: pretrain_flags(w, w / "previous", "--learning_rate=-1e-3", *OVERWRITE),
         "--learning_rate -0.001"),
        ("run_xnli.py", lambda w, m, d: xnli_args(w, m, w / "previous_xnli", d), "already holds a run"),
    ],
    ids=["run_pretrain", "run_xnli"],
)  # fmt: skip
def test_command_line_exit_status_and_one_line(script, arguments, fragment, workspace, tiny_infoxlm_checkpoint,
                                               tiny_xnli_dir):  # fmt: skip
    before = snapshot(workspace)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("INFOXLM_DEBUG", None)
    command = [sys.executable, str(REPO / script), *arguments(workspace, tiny_infoxlm_checkpoint, tiny_xnli_dir)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert_refused(result.returncode, result.stdout, result.stderr, script, [fragment])
    assert snapshot(workspace) == before


# --------------------------------------------------------------------------------------------------------------------
# The output folder: leftovers of a killed save, replacing a run only when asked


def test_leftovers_of_a_killed_save_count_as_the_previous_run_and_go_with_it(tmp_path):
    output_dir = tmp_path / "run"
    fake_checkpoint(output_dir / "tmp-checkpoint-4", 4)  # killed while staging a checkpoint
    (output_dir / "xlco_state.json.tmp").write_text("{")  # killed during one of our atomic writes
    (output_dir / "run.yaml").write_text("mine")
    # Killed during the final save_pretrained: safetensors writes the file as `.tmpXXXXXX` and renames it at the end.
    (output_dir / ".tmp5luDdL").write_bytes(b"\0" * 4096)
    leftovers = [".tmp5luDdL", "tmp-checkpoint-4", "xlco_state.json.tmp"]
    assert [path.name for path in previous_run_files(output_dir)] == leftovers
    with pytest.raises(OutputFolderError, match="already holds a run"):
        check_output_folder(output_dir, reads={}, overwrite=False)
    assert check_output_folder(output_dir, reads={}, overwrite=True)  # nothing is deleted by the check
    assert len(list(output_dir.iterdir())) == 4
    remove_previous_run(output_dir)
    assert [path.name for path in output_dir.iterdir()] == ["run.yaml"]


# --------------------------------------------------------------------------------------------------------------------
# One rule for damaged checkpoints


def test_damaged_checkpoints_are_skipped_by_true_and_refused_by_name(tmp_path, caplog):
    output_dir = tmp_path / "run"
    fake_checkpoint(output_dir / "checkpoint-2", 2)
    damaged = {
        4: ("optimizer.pt", lambda folder: (folder / "optimizer.pt").unlink()),
        6: ("trainer_state.json is unreadable", lambda folder: (folder / "trainer_state.json").write_text("{")),
        8: ("model.safetensors", lambda folder: (folder / "model.safetensors").write_bytes(b"\x10\0\0")),
        10: ("xlco_state.safetensors", lambda folder: (folder / "xlco_state.safetensors").unlink()),
    }
    for step, (_, damage) in damaged.items():
        damage(fake_checkpoint(output_dir / f"checkpoint-{step}", step))
    before = snapshot(output_dir)
    with caplog.at_level("WARNING"):
        resumed = resolve_resume_checkpoint("true", output_dir, required=XLCO_FILES)
    assert resumed.path == output_dir / "checkpoint-2"
    for step, (reason, _) in damaged.items():
        assert any(f"checkpoint-{step}: " in r.message and reason in r.message for r in caplog.records), step
        with pytest.raises(CheckpointError) as refused:
            check_checkpoint(output_dir / f"checkpoint-{step}", required=XLCO_FILES)
        message = str(refused.value)
        assert reason in message and f"resume from {output_dir / 'checkpoint-2'}" in message, message
    assert snapshot(output_dir) == before
    # Without XLCO (an MLM/TLM run) the XLCO state is not needed.
    assert check_checkpoint(output_dir / "checkpoint-10") == output_dir / "checkpoint-10"


# --------------------------------------------------------------------------------------------------------------------
# Data folders: every corpus offered is used or named


def test_a_dangling_link_in_a_data_folder_is_named(tmp_path):
    (tmp_path / "en.txt").write_text("hello\n")
    (tmp_path / "fr.txt").symlink_to(tmp_path / "gone" / "fr.txt")
    with pytest.raises(DataError, match=r"fr\.txt .*symbolic link to .*gone/fr\.txt, which does not exist"):
        find_mono_corpora([str(tmp_path)])


def test_a_pair_side_that_is_a_folder_is_called_a_folder(tmp_path):
    (tmp_path / "tatoeba.fra-eng.fra").write_text("bonjour\n")
    (tmp_path / "tatoeba.fra-eng.eng").mkdir()
    with pytest.raises(DataError, match=r"tatoeba\.fra-eng\.eng \(the aligned side of .*\) is a folder"):
        find_parallel_corpora([str(tmp_path / "tatoeba.fra-eng.fra")])


def test_files_of_one_pair_in_either_order_are_pooled(tmp_path, tiny_tokenizer):
    english, french = WORDS[:10], WORDS[10:20]
    (tmp_path / "a.eng-fra.tsv").write_text("".join(f"{e}\t{f}\n" for e, f in zip(english, french)))
    (tmp_path / "tatoeba.fra-eng.tsv").write_text("".join(f"{f}\t{e}\n" for e, f in zip(english[:4], french[:4])))
    (tmp_path / "b.deu-eng.tsv").write_text("".join(f"{f}\t{e}\n" for e, f in zip(english, french)))
    args = DataArguments(parallel_data=[str(tmp_path)], data_cache_dir=str(tmp_path / "cache"), max_seq_length=32)
    _, summary = build_pretraining_dataset(args, tiny_tokenizer, ["tlm"], seed=0)
    languages = summary["tlm"]["languages"]
    assert sorted(languages) == ["deu-eng", "eng-fra"]
    assert languages["eng-fra"]["pairs"] == 10 + 4
    # Sampled as one pair: with 14 and 10 pairs, alpha-smoothed shares p_i ∝ (n_i/N)^alpha.
    alpha = args.language_sampling_alpha
    weights = {"eng-fra": (14 / 24) ** alpha, "deu-eng": (10 / 24) ** alpha}
    expected = weights["eng-fra"] / sum(weights.values())
    assert languages["eng-fra"]["probability"] == pytest.approx(expected, rel=1e-6)
