"""File helpers shared by every command that writes output."""
import contextlib
import os
import tempfile
from pathlib import Path

from .errors import UserError


def require_writable(path, folder=False, inputs=()) -> None:
    """UserError now, before any work is done, when `path` (a file; with `folder`, a folder) cannot be written: it
    is one of the `inputs`, a folder where a file is due (or the reverse), or its nearest existing folder is a file
    or not writable (a read-only disk)."""
    path = Path(path)
    if any(path.resolve() == Path(source).resolve() for source in inputs):
        raise UserError(f"{path} is also the input: writing it would destroy the input; give another output path")
    if path.exists() and path.is_dir() != folder:
        raise UserError(f"{path} is a {'file' if folder else 'folder'}: give {'a folder' if folder else 'a file name'}")
    start = path if folder else path.parent
    existing = next(p for p in (start, *start.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: {existing} is not writable")


@contextlib.contextmanager
def atomic_outputs(*paths):
    """Yield temporary paths beside `paths`; move them all into place only if the block finishes without error.

    A failed or cancelled command therefore never leaves a half-written or clobbered file behind, and one that
    writes several files writes all of them or none: each is checked before the block runs, and the moves wait
    for the whole block.
    """
    temps = []
    try:
        for path in map(Path, paths):
            temps.append(_temporary_beside(path))
        yield temps
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(path):
    """`atomic_outputs` for one file."""
    with atomic_outputs(path) as (tmp,):
        yield tmp


def _temporary_beside(path: Path) -> Path:
    require_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions a plain open() would
    return Path(tmp)
