"""Where a training step makes the host wait for the device, counted on any device (a CPU run shows where a GPU step
would stall): `count_host_syncs`, used by benchmarks/step_time.py's checks and tests/test_host_syncs.py."""

import contextlib
import traceback
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def _call_site() -> str | None:
    """`file:line` of the innermost frame outside torch: the code that asked for the sync."""
    frame = next(
        (
            f
            for f in reversed(traceback.extract_stack()[:-2])
            if "/torch/" not in f.filename and f.filename != __file__
        ),
        None,
    )
    return None if frame is None else f"{Path(frame.filename).name}:{frame.lineno}"


class HostSyncCounter(TorchDispatchMode):
    """
    Counts, by call site, the operators after which the host has to wait for the device: on a GPU each drains the
    queue of launched kernels, and the GPU then idles while Python launches the next ones. Counted on any device,
    so a CPU run shows where a GPU step would stall (`torch.cuda.set_sync_debug_mode` reports syncs, but only on
    CUDA, and also the harmless ones of CPU tensors):

    - scalar reads: `.item()`, `bool()`, `int()`, `float()` of a tensor (`aten._local_scalar_dense`);
    - operators whose output size depends on the values: `nonzero`, boolean-mask indexing and assignment
      (`x[mask]`, `x[mask] = v`), `masked_select`, `unique`, `repeat_interleave` without `output_size`;
    - tensors made from Python data (`torch.tensor(...)`: `aten.lift_fresh`), a pageable host-to-device copy when
      made for the GPU, and copies between devices (`.to(device)`; visible only where there are two devices).

    `.tolist()` and `.numpy()` do not reach the dispatcher on the CPU: `count_host_syncs` patches them at the
    Python level. Not counted: syncs inside C++ kernels (none in a training step of either variant on CPU) and the
    NCCL collectives' waits (asynchronous on the host).
    """

    VALUE_SHAPED = {
        "aten::nonzero",
        "aten::masked_select",
        "aten::_unique2",
        "aten::unique_dim",
        "aten::unique_consecutive",
        "aten::_unique",
    }

    def __init__(self, counter: Counter):
        super().__init__()
        self.counter = counter

    def _count(self, what: str) -> None:
        site = _call_site()
        if site is not None:
            self.counter[f"{what} at {site}"] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        if name == "aten::_local_scalar_dense":
            self._count("scalar read")
        elif name in self.VALUE_SHAPED:
            self._count(name.split("::")[1])
        elif name == "aten::repeat_interleave" and kwargs.get("output_size") is None and len(args) < 3:
            self._count("repeat_interleave")
        elif name in ("aten::index", "aten::index_put", "aten::index_put_", "aten::_index_put_impl_"):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(i is not None and i.dtype in (torch.bool, torch.uint8) for i in indices):
                self._count("boolean-mask indexing")
        elif name == "aten::lift_fresh":
            self._count("tensor from Python data")
        elif name in ("aten::_to_copy", "aten::copy_"):
            source = args[1] if name == "aten::copy_" else args[0]
            target = args[0].device if name == "aten::copy_" else kwargs.get("device") or source.device
            if isinstance(source, torch.Tensor) and torch.device(target).type != source.device.type:
                self._count(f"copy {source.device.type}->{torch.device(target).type}")
        return func(*args, **kwargs)


@contextlib.contextmanager
def count_host_syncs(counter: Counter):
    """`HostSyncCounter` plus the Python-level reads that bypass the dispatcher on CPU (`.tolist()`, `.numpy()`)."""
    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy")}

    def wrap(name, original):
        def wrapper(self, *args, **kwargs):
            site = _call_site()
            if site is not None:
                counter[f"{name} at {site}"] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        with HostSyncCounter(counter):
            yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
