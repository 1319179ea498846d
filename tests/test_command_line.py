"""
The scripts' command line, as a user meets it: `--help` of every script; one clean message and exit status 2 for
bad settings, before any data preparation (and the traceback with INFOXLM_DEBUG=1); truncated weights named;
launchers that would not start one DDP run refused; a foreign `trainer` package named.
"""

import importlib.util
import shutil
import sys

import pytest
from helpers import REPO, assert_clean_error, pretrain, pretrain_flags, run_command

# --------------------------------------------------------------------------------------------------------------------
# --help of every script


def scripts_with_help() -> list[list[str]]:
    """Every command-line entry point: the run_*.py scripts, the scripts of experiments/ and benchmarks/ (files that
    run as `__main__`; their library modules only define arguments), and the modules run with -m."""
    scripts = sorted(REPO.glob("run_*.py"))
    for folder in ("experiments", "benchmarks"):
        scripts += [
            path
            for path in sorted(REPO.glob(f"{folder}/**/*.py"))
            if 'if __name__ == "__main__"' in path.read_text("utf-8")
        ]
    return [[str(path)] for path in scripts] + [["-m", "modeling_infoxlm.export"], ["-m", "trainer.data.demo_corpus"]]


@pytest.mark.parametrize("script", scripts_with_help(), ids=lambda command: command[-1].replace(str(REPO) + "/", ""))
def test_help_of_every_script_prints_usage(script):
    result = run_command([sys.executable, *script, "--help"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage:" in result.stdout and "Traceback" not in result.stderr


def test_run_pretrain_help_shows_the_percent_sign_of_its_options():
    result = pretrain("--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "i % N == 0" in result.stdout and "--overwrite_output_dir" in result.stdout


# --------------------------------------------------------------------------------------------------------------------
# Bad settings: one message naming the field and its range, exit status 2, before any data preparation


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
    result = pretrain(*pretrain_flags(workspace, output_dir), *arguments)
    assert_clean_error(result, *fragments)
    assert "Pretraining data:" not in result.stdout  # failed before the data preparation
    assert not output_dir.exists()


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None,
    reason="tensorboard is installed here: --report_to tensorboard is valid",
)
def test_report_to_a_missing_integration_names_the_extra_to_install(workspace, tmp_path):
    result = pretrain(*pretrain_flags(workspace, tmp_path / "out"), "--report_to", "tensorboard")
    assert_clean_error(result, "--report_to tensorboard", 'pip install -e ".[tensorboard]"')
    assert "Pretraining data:" not in result.stdout


def test_debug_variable_shows_the_traceback(workspace, tmp_path):
    result = pretrain(*pretrain_flags(workspace, tmp_path / "out"), "--xlco_layer", "99", INFOXLM_DEBUG="1")
    assert result.returncode != 0 and "Traceback" in result.stderr and "xlco_layer=99" in result.stderr


def test_truncated_weights_are_named(workspace, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(workspace / "config", model)
    from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining

    InfoXLMForPreTraining(InfoXLMConfig.from_pretrained(model)).save_pretrained(model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = pretrain(*pretrain_flags(workspace, tmp_path / "out"), "--model_name_or_path", str(model))
    assert_clean_error(result, str(weights))


# --------------------------------------------------------------------------------------------------------------------
# Launchers


def test_accelerate_launch_that_would_start_one_process_is_refused(workspace, tmp_path):
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu"]
    result = run_command([*launcher, str(REPO / "run_pretrain.py"), *pretrain_flags(workspace, tmp_path / "out")])
    # accelerate's launcher then fails with its own exit status and traceback, after our one message.
    assert result.returncode != 0
    before, ours = result.stderr.split("run_pretrain.py: error: ")
    assert "Traceback" not in before and ours.startswith("`accelerate launch --num_processes N` started a single")
    assert "torchrun --nproc_per_node N" in ours
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------------------
# Imports: a foreign `trainer` package on the path


def test_a_foreign_trainer_package_is_named(tmp_path):
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "__init__.py").write_text('raise RuntimeError("someone else\'s trainer was imported")\n')
    result = run_command([sys.executable, "-m", "run_pretrain", "--help"], cwd=tmp_path, PYTHONPATH=str(REPO))
    assert_clean_error(result, f"resolves to {tmp_path / 'trainer'}", "not infoxlm's `trainer` package")
