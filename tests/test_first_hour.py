"""
A user's first hour with the real commands (issue 13): `--help` of every script; one clean message and exit status 2
for bad arguments, configs, data and checkpoints, before any data preparation; `--resume_from_checkpoint True`;
atomic checkpoints and interrupted saves; refusing or replacing a previous run; multi-process runs on CPU; and the
smaller promises (queue warning, model card snippet, the printed next command, run_xnli reruns, name clashes).
"""

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA, WORDS, build_tiny_tokenizer
from pretraining_stream import tiny_trainer
from transformers import TrainerCallback

import run_xnli
from trainer import checkpoints
from trainer.checkpoints import latest_complete_checkpoint, resolve_resume_checkpoint

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 600


def command_env(**extra) -> dict:
    # One thread per process: tiny models run faster, and two processes share the two CPUs without thrashing.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("INFOXLM_DEBUG", None)
    return {**env, **extra}


def run(command: list[str], cwd: Path = REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=cwd,
        env=command_env(**env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def pretrain(*arguments: str, **env) -> subprocess.CompletedProcess:
    return run([sys.executable, str(REPO / "run_pretrain.py"), *arguments], **env)


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 2, one `run_pretrain.py: error: ...` message, no traceback; returns the message."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-3000:])
    return errors[0]


# --------------------------------------------------------------------------------------------------------------------
# A tiny workspace: tokenizer, config, monolingual and parallel text


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first_hour")
    tokenizer = build_tiny_tokenizer()
    tokenizer.save_pretrained(root / "tokenizer")
    config = {
        "model_type": "infoxlm",
        "vocab_size": len(tokenizer),
        "hidden_size": 16,
        "num_hidden_layers": 3,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 34,  # 32 usable positions (XLM-R's offset of 2)
        "xlco_layer": 2,
        "xlco_queue_size": 16,
    }
    (root / "config").mkdir()
    (root / "config" / "config.json").write_text(json.dumps(config))
    english, french = WORDS[:20], WORDS[20:40]
    (root / "mono").mkdir()
    (root / "parallel").mkdir()
    for language, words in (("en", english), ("fr", french)):
        lines = [" ".join(words[(i + j) % len(words)] for j in range(3 + i % 5)) for i in range(60)]
        (root / "mono" / f"{language}.txt").write_text("\n".join(lines) + "\n")
    pairs = [
        (" ".join(english[(i + j) % 20] for j in range(4)), " ".join(french[(i + j) % 20] for j in range(4)))
        for i in range(40)
    ]
    (root / "parallel" / "tiny.en-fr.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    return root


def tiny_run(workspace: Path, output_dir: Path, *extra: str) -> list[str]:
    """run_pretrain.py flags for a two-update run of the tiny model (XLCO loss from the first update)."""
    return [
        "--config_name", str(workspace / "config"),
        "--tokenizer_name", str(workspace / "tokenizer"),
        "--mono_data", str(workspace / "mono"),
        "--parallel_data", str(workspace / "parallel"),
        "--data_cache_dir", str(workspace / "cache"),
        "--max_seq_length", "32",
        "--per_device_train_batch_size", "4",
        "--max_steps", "2",
        "--learning_rate", "1e-3",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--xlco_queue_fill", "masked",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--seed", "0",
        "--output_dir", str(output_dir),
        *extra,
    ]  # fmt: skip


def listing(folder: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")} if folder.exists() else {}


# --------------------------------------------------------------------------------------------------------------------
# 2. --help of every script


def scripts_with_help() -> list[list[str]]:
    """Every command-line entry point: the run_*.py scripts, the scripts of experiments/ and benchmarks/ that take
    arguments, and the modules run with -m."""
    scripts = sorted(REPO.glob("run_*.py"))
    for folder in ("experiments", "benchmarks"):
        scripts += [path for path in sorted(REPO.glob(f"{folder}/**/*.py")) if "argparse" in path.read_text("utf-8")]
    return [[str(path)] for path in scripts] + [["-m", "modeling_infoxlm.export"], ["-m", "trainer.data.demo_corpus"]]


@pytest.mark.parametrize("script", scripts_with_help(), ids=lambda command: command[-1].replace(str(REPO) + "/", ""))
def test_help_of_every_script_prints_usage(script):
    result = run([sys.executable, *script, "--help"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage:" in result.stdout and "Traceback" not in result.stderr


def test_run_pretrain_help_shows_the_percent_sign_of_its_options():
    result = pretrain("--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "i % N == 0" in result.stdout and "--overwrite_output_dir" in result.stdout


# --------------------------------------------------------------------------------------------------------------------
# 5, 8. Bad settings: one message naming the field and its range, exit status 2, before any data preparation


BAD_SETTINGS = {
    "temperature": (["--xlco_temperature", "0"], ["xlco_temperature=0", "> 0", "--config_name"]),
    "layer": (["--xlco_layer", "99"], ["xlco_layer=99", "1 <= xlco_layer <= num_hidden_layers (3)"]),
    "empty queue": (["--xlco_queue_size", "0"], ["xlco_queue_size=0", ">= 1"]),
    "negative queue": (["--xlco_queue_size", "-5"], ["xlco_queue_size=-5", ">= 1"]),
    "sequence too long": (
        ["--max_seq_length", "64"],
        ["--max_seq_length 64", "max_position_embeddings=34", "32 or less"],
    ),
    "missing model folder": (
        ["--model_name_or_path", "./no/such/model"],
        ["--model_name_or_path ./no/such/model", "no such folder"],
    ),
    "unknown objective": (["--objectives", "mlm,nsp"], ["--objectives", "mlm,tlm,xlco"]),
    "missing checkpoint": (
        ["--resume_from_checkpoint", "nowhere/checkpoint-3"],
        ["nowhere/checkpoint-3", "no such folder"],
    ),
    "missing data": (["--mono_data", "no/such/mono"], ["no/such/mono"]),
}


@pytest.mark.parametrize("case", BAD_SETTINGS, ids=str)
def test_bad_setting_fails_up_front_with_one_clean_message(case, workspace, tmp_path):
    arguments, fragments = BAD_SETTINGS[case]
    output_dir = tmp_path / "out"
    result = pretrain(*tiny_run(workspace, output_dir), *arguments)
    assert_clean_error(result, *fragments)
    assert "Pretraining data:" not in result.stdout  # failed before the data preparation
    assert not output_dir.exists()


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None,
    reason="tensorboard is installed here: --report_to tensorboard is valid",
)
def test_report_to_a_missing_integration_names_the_extra_to_install(workspace, tmp_path):
    result = pretrain(*tiny_run(workspace, tmp_path / "out"), "--report_to", "tensorboard")
    assert_clean_error(result, "--report_to tensorboard", 'pip install -e ".[tensorboard]"')
    assert "Pretraining data:" not in result.stdout


def test_debug_variable_shows_the_traceback(workspace, tmp_path):
    result = pretrain(*tiny_run(workspace, tmp_path / "out"), "--xlco_layer", "99", INFOXLM_DEBUG="1")
    assert result.returncode != 0 and "Traceback" in result.stderr and "xlco_layer=99" in result.stderr


def test_keyword_overrides_of_a_saved_config_are_validated(workspace):
    from modeling_infoxlm import InfoXLMConfig

    for overrides, field in (
        ({"xlco_temperature": 0}, "xlco_temperature"),
        ({"xlco_layer": 99}, "xlco_layer"),
        ({"xlco_queue_size": 0}, "xlco_queue_size"),
    ):
        with pytest.raises(ValueError, match=f"{field}=.* is out of range"):
            InfoXLMConfig.from_pretrained(workspace / "config", **overrides)
    assert InfoXLMConfig.from_pretrained(workspace / "config", xlco_layer=3).xlco_layer == 3


def test_truncated_weights_are_named(workspace, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(workspace / "config", model)
    from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining

    InfoXLMForPreTraining(InfoXLMConfig.from_pretrained(model)).save_pretrained(model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = pretrain(*tiny_run(workspace, tmp_path / "out"), "--model_name_or_path", str(model))
    assert_clean_error(result, str(weights))


# --------------------------------------------------------------------------------------------------------------------
# A finished run, shared by the tests of what comes after it


@pytest.fixture(scope="module")
def finished_run(workspace, tmp_path_factory):
    """A finished two-update run whose queue (4,096 keys) is larger than its 40 XLCO pairs."""
    output_dir = tmp_path_factory.mktemp("finished") / "model"
    result = pretrain(*tiny_run(workspace, output_dir, "--xlco_queue_size", "4096"))
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
    result = pretrain(*tiny_run(workspace, output_dir))
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
    result = run([sys.executable, "-c", snippet], cwd=tmp_path)
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
    xnli = run([sys.executable, *command[1:], *limits])
    assert xnli.returncode == 0, xnli.stdout[-3000:] + xnli.stderr[-3000:]
    results = json.loads((Path(f"{output_dir}-xnli") / "xnli_results.json").read_text())["results"]
    assert set(results) == {"en", "sw"}


# --------------------------------------------------------------------------------------------------------------------
# 3, 4, 6. Resume-latest, interrupted saves, overwrite


def test_resume_latest_skips_interrupted_saves_and_overwrite_starts_clean(workspace, tmp_path):
    output_dir = tmp_path / "run"
    saving = ["--save_strategy", "steps", "--save_steps", "2"]
    first = pretrain(*tiny_run(workspace, output_dir, *saving, "--max_steps", "4"))
    assert first.returncode == 0, first.stderr[-5000:]
    assert sorted(p.name for p in output_dir.iterdir() if "checkpoint" in p.name) == ["checkpoint-2", "checkpoint-4"]
    for name in (
        "trainer_state.json",
        "xlco_state.safetensors",
        "xlco_state.json",
        "optimizer.pt",
        "model.safetensors",
    ):
        assert (output_dir / "checkpoint-4" / name).is_file(), name

    # What interrupted saves leave: a staging folder (killed while writing), and a checkpoint-6 without the
    # trainer_state.json that the Trainer writes last (an interrupted save of another tool or an older version).
    shutil.copytree(output_dir / "checkpoint-4", output_dir / "tmp-checkpoint-8")
    shutil.copytree(output_dir / "checkpoint-4", output_dir / "checkpoint-6")
    (output_dir / "checkpoint-6" / "trainer_state.json").unlink()

    saved = listing(output_dir / "checkpoint-4")
    explicit = pretrain(*tiny_run(workspace, output_dir, "--resume_from_checkpoint", str(output_dir / "checkpoint-6")))
    message = assert_clean_error(explicit, "checkpoint-6 is incomplete", "trainer_state.json", "checkpoint-4")
    assert "start a new run" not in message

    resumed = pretrain(
        *tiny_run(workspace, output_dir, *saving, "--max_steps", "6", "--resume_from_checkpoint", "True")
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    assert re.search(r"Skipping \S*checkpoint-6: it has no trainer_state.json", resumed.stdout), resumed.stdout[-3000:]
    assert re.search(r"Ignoring \S*tmp-checkpoint-8", resumed.stdout)
    assert re.search(r"Resuming from \S*checkpoint-4\b", resumed.stdout)
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert listing(output_dir / "checkpoint-4") == saved  # continued after update 4: not rewritten
    assert (output_dir / "checkpoint-6" / "trainer_state.json").is_file()  # the incomplete one was replaced

    overwritten = pretrain(*tiny_run(workspace, output_dir, *saving, "--overwrite_output_dir", "true"))
    assert overwritten.returncode == 0, overwritten.stderr[-5000:]
    assert sorted(p.name for p in output_dir.iterdir() if "checkpoint" in p.name) == ["checkpoint-2"]
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 2


class Interrupt(TrainerCallback):
    """Stands for Ctrl-C arriving while checkpoint-`step` is being written (after its weights, before its state)."""

    def __init__(self, monkeypatch, step):
        self.monkeypatch, self.step = monkeypatch, step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            save_xlco_state = checkpoints.save_xlco_state

            def interrupted(*args, **kwargs):
                save_xlco_state(*args, **kwargs)
                raise KeyboardInterrupt

            self.monkeypatch.setattr(checkpoints, "save_xlco_state", interrupted)


def test_interrupted_save_leaves_no_checkpoint_and_resume_takes_the_previous_one(
    tmp_path, tiny_tokenizer, monkeypatch
):
    trainer = tiny_trainer(tiny_tokenizer, tmp_path, max_steps=6, save_strategy="steps", save_steps=2)
    trainer.add_callback(Interrupt(monkeypatch, 4))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["checkpoint-2"]
    latest, skipped = latest_complete_checkpoint(tmp_path)
    assert (latest.name, skipped) == ("checkpoint-2", [])
    assert resolve_resume_checkpoint("True", tmp_path).path == tmp_path / "checkpoint-2"


# --------------------------------------------------------------------------------------------------------------------
# 7. Multi-process runs on CPU


def test_torchrun_on_cpu_is_one_ddp_run_and_resumes_latest(workspace, tmp_path):
    output_dir = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    arguments = tiny_run(
        workspace, output_dir, "--save_strategy", "steps", "--save_steps", "2", "--xlco_queue_size", "64"
    )
    first = run([*torchrun, str(REPO / "run_pretrain.py"), *arguments])
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    checkpoint = output_dir / "checkpoint-2"
    # Both ranks' keys of both updates are in the shared queue: 2 updates x 4 examples x 2 processes.
    assert json.loads((checkpoint / "xlco_state.json").read_text())["queue_filled"] == 16
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert "find_unused_parameters" not in first.stderr

    resumed = run(
        [*torchrun, str(REPO / "run_pretrain.py"), *arguments, "--max_steps", "3", "--resume_from_checkpoint", "True"]
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 3


def test_accelerate_launch_that_would_start_one_process_is_refused(workspace, tmp_path):
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu"]
    result = run([*launcher, str(REPO / "run_pretrain.py"), *tiny_run(workspace, tmp_path / "out")])
    # accelerate's launcher then fails with its own exit status and traceback, after our one message.
    assert result.returncode != 0
    before, ours = result.stderr.split("run_pretrain.py: error: ")
    assert "Traceback" not in before and ours.startswith("`accelerate launch --num_processes N` started a single")
    assert "torchrun --nproc_per_node N" in ours
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------------------
# Smaller items


def test_a_foreign_trainer_package_is_named(tmp_path):
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "__init__.py").write_text('raise RuntimeError("someone else\'s trainer was imported")\n')
    result = run([sys.executable, "-m", "run_pretrain", "--help"], cwd=tmp_path, PYTHONPATH=str(REPO))
    assert_clean_error(result, f"resolves to {tmp_path / 'trainer'}", "not infoxlm's `trainer` package")


def test_xnli_rerun_removes_the_previous_runs_predictions(tmp_path, tiny_xnli_dir, tiny_infoxlm_checkpoint):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        arguments = [
            "--model_name_or_path", str(tiny_infoxlm_checkpoint), "--test_files", str(tiny_xnli_dir),
            "--do_predict", "--output_dir", str(tmp_path), "--report_to", "none", "--disable_tqdm", "true",
        ]  # fmt: skip
        run_xnli.main(arguments)
        assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["en.test.tsv", "fr.test.tsv"]
        run_xnli.main([*arguments, "--languages", "en", "--overwrite_output_dir", "true"])
        assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["en.test.tsv"]
    finally:
        torch.set_num_threads(threads)


def test_xnli_chart_legend_names_the_training_language_and_labels_stay_readable():
    results = {
        "en": {"test": {"accuracy": 0.52}},
        "fr": {"test": {"accuracy": 0.48}},
        "sw": {"test": {"accuracy": 0.5}},
    }
    averages = {"test": {"all": {"accuracy": 0.5}}}
    figure = run_xnli.accuracy_figure(results, averages, "en", 3, "XNLI")
    (axes,) = figure.axes
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend[:2] == ["en (training language)", "zero-shot"] and "average 50.0" in legend
    average_line = next(line for line in axes.get_lines() if line.get_label().startswith("average"))
    labels = [text for text in axes.texts if re.fullmatch(r"\d+\.\d", text.get_text())]
    assert [text.get_text() for text in labels] == ["52.0", "48.0", "50.0"]
    for text in labels:  # drawn over the average line on an opaque box
        assert text.get_zorder() > average_line.get_zorder() and text.get_bbox_patch() is not None
