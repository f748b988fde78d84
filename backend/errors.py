"""The one exception type whose message is meant for the user (CLI, add-on report, server error event), and the
checks that phrase one."""
import math
import typing
import zipfile

# What np.load raises on a file that is not a readable .npy/.npz (truncated, corrupt, another format).
NUMPY_FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


class UserError(Exception):
    """Bad input or an unusable file: the message says what is wrong and what to do; nothing was written."""


class SamplingCancelled(Exception):
    """The request's `cancelled()` returned True: sampling stopped before the next model call; nothing was made.
    Here, not in `samplers`, so that reporting it needs no torch."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, for quoting it in a UserError (its type when it has none)."""
    return (str(err).splitlines() or [type(err).__name__])[0]


def check_field_types(data: dict, cls, what: str) -> None:
    """UserError naming the first value in `data` (JSON: a request, a config file) that does not have the type of
    the dataclass `cls`'s field of its name: true/false only for bool, whole numbers for int, finite numbers for
    float. Names that are not fields are left to the caller."""
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        kind = hints.get(name)
        if kind in (bool, int, float, str, list) and not _is_a(value, kind):
            raise UserError(f"{what}: '{name}' must be {kind.__name__}, got {value!r}")


def _is_a(value, kind) -> bool:
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)
