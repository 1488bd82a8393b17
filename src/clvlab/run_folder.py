"""A run folder's life: one writer at a time, built beside the target and swapped in whole, and
a completion record that says the folder is finished and what it holds.

A run (:func:`clvlab.runs.run`) never writes into the folders a reader sees:

1. :func:`writer_lock` takes an exclusive ``fcntl`` lock on ``.<name>.lock`` beside the run
   folder and beside the report folder; a second writer is refused at once, with the first
   one's pid and start time.
2. :func:`staged` yields fresh folders ``.<name>.tmp-<pid>-<id>`` beside both targets. The run
   writes its fits, tables and report there, and :data:`RECORD` (``metadata.json``) last: the
   completion record, which holds the SHA-256 of every other file of the run folder and of the
   report (:func:`manifest`).
3. On success the report folder and then the run folder are swapped in (rename the old aside,
   rename the new in: :func:`clvlab.io.swap_in`). A writer killed at any moment leaves the old
   folders or the new ones, plus hidden leftovers; a kill between the two swaps leaves a run
   folder whose record no longer matches the report, so the next run is not "up to date".
4. The fits of a killed or failed writer are kept aside (``.<name>.cache-<id>``) and offered to
   the next run as cached fits (each reused only when its own cache key matches).

Readers (``clvlab score``, ``clvlab compare``, the up-to-date check) call
:func:`read_finished`: a folder without a readable record, or with a file that is missing or
differs from its hash, is refused with every problem named.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ClvlabInputError
from .io import recover_dir, swap_in, tmp_tag

__all__ = ["RECORD", "Staging", "config_changes", "manifest", "read_finished", "staged", "verify_manifest",
           "writer_lock"]  # fmt: skip

RECORD = "metadata.json"
"""The completion record of a run folder, written last (its ``manifest`` covers every other file)."""
KEEP_SALVAGED = 2
"""How many folders of killed or failed runs are kept as fit caches (the newest)."""
_CHUNK = 1 << 20


def _lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def writer_lock(*folders: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock per folder (``.<name>.lock`` beside it) for the block.

    Raises
    ------
    ClvlabInputError
        Another process holds one of the locks (its pid and start time are named).
    """
    held: list[int] = []
    try:
        for folder in map(Path, folders):
            path = _lock_path(folder)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise ClvlabInputError(
                    f"{folder} is being written by another clvlab run ({holder}); wait for it "
                    "to finish, or give this config another `name`",
                    what="run folder",
                ) from None
            held.append(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        for fd in held:
            os.close(fd)  # closing the descriptor releases the lock; the file stays (deleting it would race)


# ----------------------------------------------------------------------------------- the record
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def manifest(folder: str | os.PathLike, *, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative POSIX paths), hidden files and ``exclude`` left out."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts) and rel.as_posix() not in exclude:
            out[rel.as_posix()] = _sha256(p)
    return out


def verify_manifest(folder: str | os.PathLike, expected: dict[str, str], *, label: str | None = None) -> list[str]:
    """Problems of ``folder`` against a :func:`manifest`: files missing or not what was written."""
    folder = Path(folder)
    label = label or str(folder)
    missing = [rel for rel in expected if not (folder / rel).is_file()]
    changed = [rel for rel, sha in expected.items() if rel not in missing and _sha256(folder / rel) != sha]
    problems = []
    if missing:
        problems.append(f"{label}: {len(missing)} file(s) of the finished run are missing: {missing[:5]}")
    if changed:
        problems.append(f"{label}: {len(changed)} file(s) differ from what the run wrote (changed, truncated or "
                        f"from another run): {changed[:5]}")  # fmt: skip
    return problems


def read_finished(run_dir: str | os.PathLike, *, report_dir: str | os.PathLike | None = None,
                  what: str = "run folder") -> dict[str, Any]:  # fmt: skip
    """The completion record of a finished run folder, checked against every file it lists.

    Parameters
    ----------
    run_dir : path
        A run folder written by :func:`clvlab.runs.run`.
    report_dir : path, optional
        Also check the run's report folder.
    what : str
        How the folder is named in errors (e.g. ``"--run"``).

    Returns
    -------
    dict
        The record (``metadata.json``).

    Raises
    ------
    ClvlabInputError
        No folder, no record (a run in progress, killed or never finished), an unreadable record,
        or files missing or changed since the run finished; every problem is listed.
    """
    run_dir = recover_dir(run_dir)
    record = run_dir / RECORD
    if not run_dir.is_dir():
        raise ClvlabInputError(f"{what} {run_dir}: no such folder (not a finished clvlab run folder)",
                               what="run folder")  # fmt: skip
    if not record.is_file():
        raise ClvlabInputError(f"{what} {run_dir}: no {RECORD} (not a finished clvlab run: never run, or its run was "
                               "killed before it finished; run it again)", what="run folder")  # fmt: skip
    try:
        meta = json.loads(record.read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"a JSON {type(meta).__name__}, not an object")
    except (OSError, ValueError) as exc:
        raise ClvlabInputError(f"{what} {record}: unreadable ({exc}); the file is damaged or truncated: run the config "
                               "again", what="run folder") from None  # fmt: skip
    files = meta.get("manifest")
    if not isinstance(files, dict) or not isinstance(files.get("run"), dict):
        raise ClvlabInputError(f"{what} {record}: no file manifest (written by an older clvlab, or not by a run); "
                               "run the config again", what="run folder")  # fmt: skip
    problems = verify_manifest(run_dir, files["run"], label=f"{what} {run_dir}")
    if report_dir is not None:
        problems += verify_manifest(recover_dir(report_dir), files.get("report") or {}, label=f"report {report_dir}")
    if problems:
        raise ClvlabInputError(problems + ["run the config again to rebuild the folder"], what="run folder")
    return meta


def config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``"section.key: old -> new"`` for every setting that differs between two config dicts."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# ----------------------------------------------------------------------------------- staging
@dataclass(frozen=True)
class Staging:
    """Where a run writes (``run_dir``, ``report_dir``: hidden folders beside the targets) and the
    folders it may take cached fits from (``cache_dirs``: the live run folder first)."""

    run_dir: Path
    report_dir: Path
    cache_dirs: tuple[Path, ...]


def _salvage(target: Path) -> list[Path]:
    """Keep what killed or failed writers of ``target`` left as fit caches (newest first).

    Call it holding the writer lock: every staging folder is then a dead writer's.
    """
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        with contextlib.suppress(OSError):
            os.rename(stale, target.parent / f".{target.name}.cache-{uuid.uuid4().hex[:12]}")
    kept = sorted(target.parent.glob(f".{target.name}.cache-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP_SALVAGED:]:
        shutil.rmtree(old, ignore_errors=True)
    return kept[:KEEP_SALVAGED]


def _new_staging(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{tmp_tag()}"
    tmp.mkdir()
    return tmp


@contextlib.contextmanager
def staged(run_dir: str | os.PathLike, report_dir: str | os.PathLike) -> Iterator[Staging]:
    """Fresh folders beside ``run_dir`` and ``report_dir``, swapped in whole when the block succeeds.

    Call it holding :func:`writer_lock` on both. The block must write the completion record last.
    On success the report folder is swapped in, then the run folder, and the salvaged fit caches
    are removed. On an error (or a kill) the targets are untouched; the run folder's staging is
    kept as a fit cache for the next run.
    """
    run_dir, report_dir = recover_dir(run_dir), recover_dir(report_dir)
    salvaged = _salvage(run_dir)
    for stale in report_dir.parent.glob(f".{report_dir.name}.tmp-*"):  # nothing in a report is worth keeping
        shutil.rmtree(stale, ignore_errors=True)
    run_tmp, rep_tmp = _new_staging(run_dir), _new_staging(report_dir)
    ok = False
    try:
        yield Staging(run_tmp, rep_tmp, (run_dir, *salvaged))
        ok = True
    finally:
        if ok:
            swap_in(rep_tmp, report_dir)
            swap_in(run_tmp, run_dir)
            for old in salvaged:
                shutil.rmtree(old, ignore_errors=True)
        else:
            shutil.rmtree(rep_tmp, ignore_errors=True)
            if run_tmp.exists():
                with contextlib.suppress(OSError):
                    os.rename(run_tmp, run_dir.parent / f".{run_dir.name}.cache-{uuid.uuid4().hex[:12]}")


def link_tree(src: Path, dst: Path) -> Path:
    """Copy the folder ``src`` to ``dst`` by hard links (a saved fit is never rewritten in place,
    only replaced whole, so sharing its files is safe); copies where links are not possible."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=link)
    return dst
