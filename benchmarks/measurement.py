"""How the benchmarks measure: device-synchronised timing (laps, interleaved runs), peak memory (RSS on the CPU,
the allocator's peak on CUDA), the device's matmul peak, and the machine a table was measured on."""

import contextlib
import gc
import logging
import os
import platform
import statistics
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable

import torch
import transformers

GIB = 2**30
# Dense bf16 tensor-core peaks from the datasheets (SXM parts), for MFU on GPU; --peak_tflops overrides.
DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def quiet_logs(*names: str) -> None:
    """Only errors from these loggers and no warnings: the benchmark's own lines and tables stay readable."""
    logging.basicConfig(level=logging.WARNING)
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


# ------------------------------------------------------------------------------------------------ time


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Accumulates named laps, synchronising the device at each boundary so a lap holds its own kernels."""

    def __init__(self, device: torch.device):
        self.device = device
        self.laps: dict[str, float] = defaultdict(float)
        self.last = 0.0

    def start(self) -> None:
        synchronize(self.device)
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        self.laps[name] += now - self.last
        self.last = now


def interleaved_seconds(
    runs: dict[str, Callable], inputs: Iterable, device: torch.device, report: Callable | None = None
) -> dict[str, list[float]]:
    """Seconds of each `run(input)`, every run in turn on each input (a, b, a, b, ...), so that a slow spell of a
    shared machine hits them all; the device is synchronised around each. `report(index, name, seconds)` after
    each. The warm-up is the caller's to drop."""
    times = {name: [] for name in runs}
    for index, item in enumerate(inputs):
        for name, run in runs.items():
            synchronize(device)
            start = time.perf_counter()
            run(item)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
            if report is not None:
                report(index, name, times[name][-1])
    return times


def median_interleaved(runs: dict[str, Callable], inputs: Iterable, warmup: int, device: torch.device) -> dict:
    """Median seconds of each run over `inputs` after `warmup` of them, alternating between the runs."""
    times = interleaved_seconds(runs, inputs, device)
    return {name: statistics.median(values[warmup:]) for name, values in times.items()}


# ------------------------------------------------------------------------------------------------ FLOP/s peaks


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 8) -> float:
    """FLOP/s of the fastest of `repeats` size^3 matmuls: what this device can do at best."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def datasheet_peak(device: torch.device, bf16: bool, override_tflops: float | None = None) -> float | None:
    """The card's dense bf16 peak in FLOP/s (for MFU), `override_tflops` if given; None off CUDA or without bf16."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda" or not bf16:
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in DATASHEET_BF16_TFLOPS.items() if key in name), None)


# ------------------------------------------------------------------------------------------------ memory


def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def cuda_peak_start(device: torch.device) -> int:
    """Resets the CUDA allocator's peak; returns the bytes allocated now, the base of `cuda_peak_since` (0 off
    CUDA, where there is no allocator peak to read)."""
    gc.collect()
    if device.type != "cuda":
        return 0
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def cuda_peak_since(device: torch.device, base: int) -> int | None:
    """Bytes allocated at the peak since `cuda_peak_start` above what was allocated then (None off CUDA)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


# ------------------------------------------------------------------------------------------------ machine


def machine_line(device: torch.device) -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    line = (
        f"CPU {cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}"
    )
    if device.type == "cuda":
        line += f", GPU {torch.cuda.get_device_name(device)}"
    return line
