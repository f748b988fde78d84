"""File helpers shared by every command that writes output."""
import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path`; move it into place only if the block finishes without error.

    A failed or cancelled command therefore never leaves a half-written or clobbered file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions a plain open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
