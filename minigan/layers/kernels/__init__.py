"""Triton kernels: where they can run, and the fused instance norm + (Leaky)ReLU they provide.

`minigan.instance_norm_leaky_relu(..., impl="triton")` lands here. The kernel module (and with it
triton) is imported only when a kernel is first used, so `import minigan` works without triton.

Triton compiles for CUDA GPUs. On CPU its interpreter runs the same kernels with numpy (slowly,
exactly: that is how the tests run without a GPU); it is switched on by the environment variable
TRITON_INTERPRET=1, read once, when the kernels are defined -- so it must be set before they are
imported:

>>> import os, torch
>>> reason = unavailable_reason(torch.zeros(1, 2, 3, 3))
>>> reason is None or "TRITON_INTERPRET=1" in reason
True
>>> unavailable_reason(torch.zeros(1, 2, 3, 3, dtype=torch.int64)) is not None
True
"""
import functools
import importlib
import importlib.util
import os
import sys

import torch

# The kernel module is not named after the function below: importing a submodule sets an attribute
# of its package, which would then shadow that function.
KERNELS = "minigan.layers.kernels.instance_norm_act"
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@functools.lru_cache(maxsize=None)
def _triton_import_error():
    """None when `import triton` works, else why not (tried once: later calls are free)."""
    try:
        import triton  # noqa: F401
    except Exception as error:      # ImportError, or a broken install failing while loading
        return f"{type(error).__name__}: {error}"
    return None


def _interpreting():
    """Whether the kernels are (or, once imported, will be) run by Triton's CPU interpreter."""
    module = sys.modules.get(KERNELS)
    if module is not None:
        # decided when the module was imported: the kernels are interpreter objects or not
        return type(module._forward_kernel).__name__ == "InterpretedFunction"
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


def unavailable_reason(x):
    """None when the Triton kernels can run on tensor `x`; else a sentence saying why not.

    Cheap: the checks that need no import come first, and `import triton` is tried once.
    """
    if x.dtype not in DTYPES:
        return f"the Triton kernels take float16/bfloat16/float32/float64 tensors, got {x.dtype}"
    if importlib.util.find_spec("triton") is None:
        return ("triton is not installed (it ships for Linux x86-64: pip install triton), "
                "use impl='torch'")
    if x.device.type == "cpu" and not _interpreting():
        if KERNELS in sys.modules:
            return ("a CPU tensor needs Triton's interpreter, but the kernels were imported without "
                    "it: set TRITON_INTERPRET=1 before importing minigan kernels (or use a CUDA "
                    "tensor, or impl='torch')")
        return ("a CPU tensor needs Triton's interpreter: set TRITON_INTERPRET=1 before importing "
                "minigan kernels (or use a CUDA tensor, or impl='torch')")
    if x.device.type not in ("cuda", "cpu"):
        return (f"the Triton kernels run on CUDA tensors (or CPU under TRITON_INTERPRET=1), "
                f"got {x.device}")
    error = _triton_import_error()
    if error is not None:
        return f"triton is installed but not importable on this platform ({error}); use impl='torch'"
    return None


def instance_norm_leaky_relu(input, weight, bias, negative_slope, eps, **tuning):
    """The fused op on the Triton path, with autograd (see `minigan.layers.kernels.instance_norm_act`).

    Raises RuntimeError saying why when the kernels cannot run on `input`.
    """
    reason = unavailable_reason(input)
    if reason is not None:
        raise RuntimeError(f"instance_norm_leaky_relu (Triton): {reason}")
    kernels = importlib.import_module(KERNELS)
    return kernels.instance_norm_leaky_relu(input, weight, bias, negative_slope, eps, **tuning)
