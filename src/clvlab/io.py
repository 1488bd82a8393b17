"""Atomic file output: write to a temporary file in the target folder, then rename.

A reader never sees a half-written artifact, and a crash leaves the old file intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk, so a rename never outlives its data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_tag() -> str:
    """``<pid>-<random>``: names a temporary file or folder by the process that writes it."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _writer_alive(tag: str) -> bool:
    """Whether the process named by a :func:`tmp_tag` still runs (an untagged name: no)."""
    head = tag.split("-", 1)[0]
    if not head.isdigit():
        return False
    pid = int(head)
    if pid == os.getpid():
        return True  # this process's own (e.g. another thread's) temporary: not stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: Path, prefix: str, suffix: str = "") -> None:
    """Remove what killed writers left (``prefix<tag>suffix``), sparing a live writer's temporaries."""
    for stale in parent.glob(f"{prefix}*{suffix}"):
        tag = stale.name[len(prefix) : len(stale.name) - len(suffix)]
        if _writer_alive(tag):
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it onto ``path``.

    A reader sees the old file or the new one, never a part; temporary files a killed writer
    left for the same target are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent, f".{path.name}.", ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, allowed: set[str] | None = None) -> Iterator[Path]:
    """Build a folder beside ``path`` and swap it in whole: readers see the old folder or the new.

    The new folder is written as ``.<name>.tmp-<id>``, every file fsynced, then the old folder
    is renamed aside (``.<name>.old-<id>``), the new one renamed in, and the old one deleted. A
    writer killed between the two renames leaves only the old folder aside: :func:`recover_dir`
    (called by readers) puts it back. ``allowed``: the file names the folder may hold; an
    existing folder with anything else is refused (it is not ours to replace).
    """
    from .errors import ClvlabInputError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    if allowed is not None and path.is_dir():
        foreign = sorted(p.name for p in path.iterdir() if p.name not in allowed)
        if foreign:
            raise ClvlabInputError(f"{path} holds other files {foreign[:5]}: refusing to replace it; write the "
                                   "model to an empty folder of its own", what="output folder")  # fmt: skip
    _remove_stale(path.parent, f".{path.name}.tmp-")
    tmp = path.parent / f".{path.name}.tmp-{tmp_tag()}"
    tmp.mkdir()
    try:
        yield tmp
        swap_in(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def swap_in(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Put the finished folder ``tmp`` (beside ``path``) in place of ``path``, whole.

    Every file and folder of ``tmp`` is fsynced, the old ``path`` renamed aside
    (``.<name>.old-<id>``), ``tmp`` renamed in and the old folder deleted; a writer killed
    between the two renames leaves only the old folder aside, which :func:`recover_dir` puts back.
    """
    tmp, path = Path(tmp), Path(path)
    for f in sorted(tmp.rglob("*"), reverse=True):  # files, then their folders
        _fsync(f)
    _fsync(tmp)
    old = path.parent / f".{path.name}.old-{tmp_tag()}"
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    _fsync(path.parent)
    shutil.rmtree(old, ignore_errors=True)
    return path


def recover_dir(path: str | os.PathLike) -> Path:
    """Undo a folder swap a killed :func:`atomic_dir` left half done (the old folder set aside)."""
    path = Path(path)
    if not path.exists():
        aside = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
        if aside:
            os.rename(aside[-1], path)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


TABLE_SUFFIXES = (".parquet", ".csv")
"""Formats tables are written in (chosen by the path's suffix)."""


def check_table_path(path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` as a Path, or a ClvlabInputError when its suffix is not a table format (call it
    before the work whose result goes there)."""
    from .errors import ClvlabInputError

    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise ClvlabInputError(f"{what} {path}: unsupported suffix {path.suffix!r}; expected one of {TABLE_SUFFIXES}",
                               what="argument")  # fmt: skip
    return path


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a DataFrame as Parquet or CSV (chosen by suffix), atomically."""
    path = check_table_path(path)
    suffix = path.suffix.lower()
    if df.attrs:  # Parquet stores attrs as JSON: make dates and the like strings
        df = df.copy(deep=False)
        df.attrs = json.loads(json.dumps(df.attrs, default=str))
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
    return path
