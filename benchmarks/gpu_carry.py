#!/usr/bin/env python3
"""What a bare GPU machine lacks, carried with the code: Python wheels and a small data folder, in one ignored folder.

Here (with network access to PyPI and ../shared/data beside the checkout):

    python benchmarks/gpu_carry.py prepare                 # -> .gpu_carry/ (wheels/, data.tar.xz, manifest.json)

On the GPU machine (no network; torch and transformers installed; the repository with .gpu_carry/ beside it):

    python3 benchmarks/gpu_carry.py run --check            # benchmarks/gpu_check.py (<= 8 min on one H200)
    python3 benchmarks/gpu_carry.py run --profile          # the reproduction's GPU profile (<= 9 min, estimated)

`prepare` downloads, for CPython 3.12 on manylinux x86-64, the wheels of every requirement of setup.cfg that the GPU
image does not have (IMAGE_PACKAGES: the image's package list in /work/.library/device/KINDS.md) and, recursively,
of their own requirements, pinned to the versions installed here (so that the GPU runs what CI tested); it packs the
XLM-R tokenizer, mono/, tatoeba/ and xnli/ of ../shared/data into data.tar.xz; and it checks that code + carried
folder stay within the 64 MiB a device call may carry. Everything is written to a staging folder first, then moved
into place: a failed `prepare` leaves the previous .gpu_carry/ as it was.

`run` installs the wheels with `pip install --no-index --no-deps --target /tmp/infoxlm-site` (the image's own
packages stay untouched), unpacks the data to ../shared/data beside the checkout unless it is there, runs the check
and/or the profile with that site on PYTHONPATH, and leaves under --results (default $OUT, else outputs/gpu-results):
gpu_check.json and gpu_check.log, and/or reproduction-gpu.tar.gz (experiments/results-gpu/ and every run's logs)
and reproduction-gpu.log. Only the standard library is imported before the wheels are installed.
"""

import argparse
import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / ".gpu_carry"
SHARED = REPO.parent / "shared" / "data"
DATA_PARTS = ("xlmr-tokenizer", "mono", "tatoeba", "xnli")
CARRY_LIMIT = 64 * 2**20  # what one device call may carry: tracked + untracked-not-ignored files + carried paths
SITE = Path("/tmp/infoxlm-site")
# Python packages of the GPU machine's image (/work/.library/device/KINDS.md, "Python packages already there",
# read 2026-11-17), normalised. Requirements among them are not carried.
IMAGE_PACKAGES = set(
    """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
    charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
    cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax
    fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
    hypothesis idna imageio interface-meta iniconfig jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2
    joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
    markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch
    mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti
    nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver
    nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
    nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
    orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache
    protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
    pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex
    requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
    sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
    tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio
    torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
    typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp""".split()
)
# The GPU machine: CPython 3.12 on x86-64 Linux (KINDS.md); pip matches each manylinux tag exactly.
PLATFORM_OPTIONS = [
    "--only-binary=:all:",
    "--python-version", "3.12",
    "--implementation", "cp",
    *[f"--platform={tag}" for tag in (
        "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
        "manylinux2014_x86_64", "manylinux1_x86_64", "any",
    )],
]  # fmt: skip
MARKER_ENVIRONMENT = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}


class CarryError(Exception):
    """A problem the user fixes: one line, exit status 2."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="Here: download the wheels and pack the data into --folder.")
    prepare.add_argument("--folder", default=str(FOLDER))
    prepare.add_argument("--shared_data", default=str(SHARED))
    prepare.add_argument(
        "--also",
        nargs="*",
        default=["transformers"],
        help="Packages to carry although the image has them, at the versions installed here (default: transformers, "
        "whose image version, 5.17 when last read, is older than what CI tests; pass --also with nothing to skip it).",
    )
    run = commands.add_parser("run", help="On the GPU machine: install the wheels, unpack the data, run.")
    run.add_argument("--folder", default=str(FOLDER))
    run.add_argument("--check", action="store_true", help="benchmarks/gpu_check.py")
    run.add_argument("--profile", action="store_true", help="experiments/run_reproduction.py, GPU profile")
    run.add_argument("--smoke", action="store_true", help="Pass --smoke to both (tries the whole path on a CPU).")
    run.add_argument("--results", default=None, help="Default: $OUT if set, else outputs/gpu-results.")
    run.add_argument("--shared_data", default=str(SHARED))
    args = parser.parse_args(argv)
    if args.command == "run" and not (args.check or args.profile):
        parser.error("run: pass --check, --profile or both")
    return args


# ------------------------------------------------------------------------------------------------ prepare (here)


def requirement_names() -> list[str]:
    """setup.cfg's install_requires as bare names."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options"]["install_requires"].strip().splitlines()
    return [re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0] for line in lines if line.strip()]


def wheel_requirements(wheel: Path) -> list[str]:
    """Names of the wheel's unconditional requirements on the GPU machine (markers evaluated for it; no extras)."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode("utf-8"))
    names = []
    for line in message.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(MARKER_ENVIRONMENT):
            names.append(requirement.name)
    return names


def pinned(name: str) -> str:
    """`name==<version installed here>`, or `name` (the newest) if it is not installed here."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def download_wheels(names: list[str], also: list[str], folder: Path) -> list[str]:
    """The carried packages: `names` not in the image, `also`, and their requirements not in the image."""
    wanted = [n for n in names if normalise(n) not in IMAGE_PACKAGES] + list(also)
    done: set[str] = set()
    carried = []
    while wanted:
        name = wanted.pop(0)
        if normalise(name) in done:
            continue
        done.add(normalise(name))
        before = set(folder.glob("*.whl"))
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *PLATFORM_OPTIONS, "-d", str(folder)]
        result = subprocess.run([*command, pinned(name)], capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise CarryError(
                f"pip download {pinned(name)} failed ({last}): check that pip reaches PyPI here (proxy, network) "
                "and that the package has a wheel for CPython 3.12 on manylinux x86-64."
            )
        (wheel,) = set(folder.glob("*.whl")) - before or [_existing_wheel(folder, name)]
        carried.append(wheel.name)
        wanted += [n for n in wheel_requirements(wheel) if normalise(n) not in IMAGE_PACKAGES | done]
    return carried


def _existing_wheel(folder: Path, name: str) -> Path:
    stem = normalise(name).replace("-", "_")
    return next(p for p in folder.glob("*.whl") if normalise(p.name.split("-")[0]).replace("-", "_") == stem)


def pack_data(shared: Path, archive: Path) -> None:
    missing = [part for part in DATA_PARTS if not (shared / part).is_dir()]
    if missing:
        raise CarryError(
            f"--shared_data {shared}: no {', '.join(missing)} there; pass the folder that holds {', '.join(DATA_PARTS)}"
        )
    with tarfile.open(archive, "w:xz", preset=6) as tar:
        for part in DATA_PARTS:
            tar.add(shared / part, arcname=part)


def working_tree_bytes() -> int:
    """Tracked and untracked-not-ignored files: what a device call sends besides the carried paths."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum(
        (REPO / os.fsdecode(name)).stat().st_size for name in listed if name and (REPO / os.fsdecode(name)).is_file()
    )


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare(args) -> None:
    folder = Path(args.folder)
    if not _ignored(folder):
        raise CarryError(f"--folder {folder}: not ignored by git; device calls carry only ignored paths by name.")
    staging = Path(tempfile.mkdtemp(prefix=".gpu_carry-staging-", dir=folder.parent))
    try:
        (staging / "wheels").mkdir()
        print("downloading wheels (PyPI)...", flush=True)
        wheels = download_wheels(requirement_names(), args.also, staging / "wheels")
        print("packing data...", flush=True)
        pack_data(Path(args.shared_data), staging / "data.tar.xz")
        carried, tree = folder_bytes(staging), working_tree_bytes()
        if carried + tree > CARRY_LIMIT:
            raise CarryError(
                f"code {tree / 2**20:.1f} MiB + carried {carried / 2**20:.1f} MiB is over the 64 MiB a device call "
                "carries: drop --also packages, or ignore large untracked files."
            )
        manifest = {
            "prepared_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "wheels": sorted(wheels),
            "data": {"archive": "data.tar.xz", "parts": list(DATA_PARTS), "sha256": sha256(staging / "data.tar.xz")},
            "bytes": {"carried": carried, "working_tree": tree, "limit": CARRY_LIMIT},
            "device_command": f"python3 benchmarks/gpu_carry.py run --check   (carry: {folder.name})",
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"{len(wheels)} wheels: {', '.join(sorted(wheels))}")
    print(
        f"{folder}: {carried / 2**20:.1f} MiB carried + {tree / 2**20:.1f} MiB of code = "
        f"{(carried + tree) / 2**20:.1f} MiB (limit 64 MiB)"
    )
    print(f"On the GPU machine (carry {folder.name}): python3 benchmarks/gpu_carry.py run --check  (or --profile)")


def _ignored(folder: Path) -> bool:
    # A path inside: a pattern for a folder ("/.gpu_carry/") does not match the folder's own name before it exists.
    probe = subprocess.run(["git", "check-ignore", "-q", str(folder / "manifest.json")], cwd=REPO)
    return probe.returncode == 0


# ------------------------------------------------------------------------------------------------ run (GPU machine)


def install(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    wheels = [str(folder / "wheels" / name) for name in manifest["wheels"]]
    missing = [w for w in wheels if not Path(w).is_file()]
    if missing:
        raise CarryError(f"{folder}: wheels {missing} listed in manifest.json are missing; run prepare again.")
    if wheels and sys.version_info[:2] != (3, 12):
        raise CarryError(
            f"this Python is {sys.version_info.major}.{sys.version_info.minor}; the carried wheels are for CPython 3.12 "
            "(the GPU image's): run `run` on the GPU machine, or `pip install -e .` here instead."
        )
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    command += ["--no-cache-dir", "--upgrade", "--target", str(SITE), *wheels]
    if wheels and subprocess.run(command).returncode != 0:
        raise CarryError(f"pip install of the {len(wheels)} carried wheels into {SITE} failed (its message is above).")
    return manifest


def unpack_data(folder: Path, shared: Path, manifest: dict) -> None:
    if all((shared / part).is_dir() for part in DATA_PARTS):
        return
    archive = folder / manifest["data"]["archive"]
    if sha256(archive) != manifest["data"]["sha256"]:
        raise CarryError(f"{archive}: checksum differs from manifest.json; run prepare again.")
    shared.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:xz") as tar:
        tar.extractall(shared, filter="data")


def run_logged(command: list[str], log: Path, env: dict) -> int:
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:  # echoed, so the caller's output tail shows progress
            out.write(line)
            sys.stdout.write(line)
            sys.stdout.flush()
    code = process.wait()
    print(
        f"[{' '.join(command[1:3])}: exit {code} after {time.perf_counter() - started:.0f} s; log {log}]", flush=True
    )
    return code


def run(args) -> int:
    folder = Path(args.folder)
    if not (folder / "manifest.json").is_file():
        raise CarryError(f"{folder}/manifest.json missing: run `python benchmarks/gpu_carry.py prepare` here first.")
    results = Path(args.results or os.environ.get("OUT") or REPO / "outputs" / "gpu-results")
    results.mkdir(parents=True, exist_ok=True)
    manifest = install(folder)
    shared = Path(args.shared_data)
    unpack_data(folder, shared, manifest)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH")]))}
    env["PYTHONUNBUFFERED"] = "1"
    smoke = ["--smoke"] if args.smoke else []
    codes = []
    if args.check:
        command = [sys.executable, "benchmarks/gpu_check.py", *smoke, "--tokenizer", str(shared / "xlmr-tokenizer")]
        command += ["--data_dir", str(shared), "--output", str(results / "gpu_check.json")]
        codes.append(run_logged(command, results / "gpu_check.log", env))
    if args.profile:
        config = REPO / "experiments" / "reproduction-gpu.yaml"
        output = REPO / "outputs" / ("reproduction-gpu-smoke" if args.smoke else "reproduction-gpu")
        result_dir = output / "results" if args.smoke else REPO / "experiments" / "results-gpu"
        command = [sys.executable, "experiments/run_reproduction.py", "--config", str(config), *smoke]
        command += ["--output_dir", str(output), "--results_dir", str(result_dir)]
        codes.append(run_logged(command, results / "reproduction-gpu.log", env))
        # One archive: the results folder and every run's logs and records (not the models), for $OUT's few files.
        with tarfile.open(results / "reproduction-gpu.tar.gz", "w:gz") as tar:
            if result_dir.is_dir():
                tar.add(result_dir, arcname="results-gpu")
            for path in sorted(output.glob("*/*")):
                if path.suffix in (".log", ".yaml", ".json") or path.name in ("retrieval", "xnli"):
                    tar.add(path, arcname=f"runs/{path.relative_to(output)}")
    return max(codes)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(args)
            return 0
        return run(args)
    except CarryError as error:
        if os.environ.get("INFOXLM_DEBUG"):
            raise
        print(f"gpu_carry.py: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
