"""benchmarks/gpu_carry.py: which requirements a bare GPU machine gets as wheels, and its one-line refusals."""

import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_carry  # noqa: E402


def test_wheel_requirements_are_those_of_python_3_12_on_linux_without_extras(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            "Name: demo",
            "Version: 1.0",
            "Requires-Dist: dill (>=0.3.0)",
            "Requires-Dist: multiprocess<0.70.17",
            "Requires-Dist: pywin32; sys_platform == 'win32'",
            "Requires-Dist: tomli; python_version < '3.11'",
            "Requires-Dist: typing-extensions; python_version >= '3.8'",
            "Requires-Dist: pytest; extra == 'tests'",
        ]
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo-1.0.dist-info/METADATA", metadata + "\n")
    assert gpu_carry.wheel_requirements(wheel) == ["dill", "multiprocess", "typing-extensions"]


def test_requirements_missing_from_the_gpu_image_are_the_ones_to_carry():
    names = gpu_carry.requirement_names()
    assert {"torch", "transformers", "datasets", "babel"} <= set(names)
    missing = {n for n in names if gpu_carry.normalise(n) not in gpu_carry.IMAGE_PACKAGES}
    assert missing == {"datasets", "torchdata", "evaluate", "babel"}


def test_prepare_refuses_a_folder_that_git_would_send_and_run_refuses_an_unprepared_one(tmp_path, capsys):
    folder = REPO / "gpu-carry-not-ignored"
    assert gpu_carry.main(["prepare", "--folder", str(folder)]) == 2
    error = capsys.readouterr().err
    assert "not ignored by git" in error and len(error.strip().splitlines()) == 1 and not folder.exists()
    assert gpu_carry.main(["run", "--check", "--folder", str(tmp_path), "--results", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert "run `python benchmarks/gpu_carry.py prepare`" in error and not (tmp_path / "r").exists()
