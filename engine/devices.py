"""Choosing the torch device, and describing what the machine offers."""

from __future__ import annotations

from typing import Any

import torch

from .errors import InputError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cpu``/``cuda``/``cuda:N`` as given.

    Raises:
        InputError: for an unknown name, or a CUDA device this torch cannot use.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise InputError(f"Unknown device '{name}': use auto, cpu or cuda") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"CUDA was requested but this torch ({torch.__version__}) sees no CUDA GPU. "
                "Choose the device cpu, or install a CUDA build of torch (see README)."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"There is no {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise InputError(f"Unsupported device '{name}': use auto, cpu or cuda")
    return device


def describe_environment() -> dict[str, Any]:
    """Torch version and the usable devices, as a JSON-ready dict (``python -m engine check``)."""
    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "default_device": str(resolve_device("auto")),
    }
