"""Atomic writes: nothing is ever written in place.

Every output goes to a temporary file in the same folder and is renamed over the target, so an
interrupted run never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.
    The temporary name keeps path's suffix (writers like AOTInductor insist on theirs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600): give it the target's mode, or a file's usual one.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_named_path(path: str | os.PathLike) -> Iterator[Path]:
    """atomic_path for writers that record the file's name inside it (torch.jit.save and
    AOTInductor name the root folder of their zip archive after the file): yields
    <hidden temporary folder beside path>/<path's name>, so the archive carries the final name."""
    path = Path(path)
    with atomic_path(path) as tmp:
        folder = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent))
        try:
            yield folder / path.name
            os.replace(folder / path.name, tmp)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
