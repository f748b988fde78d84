"""Pick the torch device: CUDA, then Apple MPS, then CPU, unless the user names one."""
import torch

from .errors import UserError


def pick_device(override: str | None = None) -> torch.device:
    """`override` is None/"auto" (best available) or a torch device string ("cpu", "cuda", "cuda:1", "mps")."""
    if override in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(override)
    except RuntimeError as err:
        raise UserError(f"unknown device {override!r}: use auto, cpu, cuda, cuda:N or mps ({err})") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise UserError(f"device {override!r} is not available on this machine; use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {override!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device
