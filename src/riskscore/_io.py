"""Writing files so that a reader never sees half of one, and hashing them.

Every output riskscore writes (event tables, bundles, batch parts, manifests,
reports, command-line outputs) goes through :func:`atomic_write`: the content is
written to a temporary file beside the target, flushed to disk, and renamed into
place in one step. A crash leaves either the old file or the new one, never a
mixture; the temporary file is removed on any error.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_text", "atomic_write", "fsync_file", "sha256_file"]


def fsync_file(path: Path) -> None:
    """Flush ``path``'s content to disk (a no-op where the platform cannot)."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``target``, then rename it to ``target``.

    The file gets the usual permissions (``0o666`` less the umask); the
    temporary file is synced before the rename and removed on any error.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        fsync_file(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; use the usual mode
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_text(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"))


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
