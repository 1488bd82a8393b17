"""Kill a re-run with a changed setting at chosen moments; report what each kill left.

    python tests/kill_harness.py SPEC.json  ->  one JSON object on the last line of stdout

SPEC: ``root`` (a scratch folder), ``pristine`` (a root holding a finished run of ``old``),
``old`` and ``new`` (two run configs, as mappings, with the same ``name``), ``fractions`` (where to kill, as fractions of the re-run's file renames), ``from_end`` (and
before the R-j-th rename for each j), ``rerun_new`` (indices, negative from the end, of the
kills after which the new config is also re-run), ``rerun_old`` (the same for the old one;
default: after every kill).

What it does, in one interpreter (imports paid once; each killed run is a forked child, so the
kill is a real SIGKILL of a real run):

1. runs ``new`` on a copy of ``pristine``, uninterrupted (the reference tables, its log, and
   ``R``: the number of renames clvlab's writers make in that re-run: every table, figure,
   model and the two folder swaps);
2. for each kill point k (of R): restores the pristine folders, forks a child that re-runs
   ``new`` and SIGKILLs itself just before its k-th rename, then reads what the kill left:
   whether the run folder, and the run folder with the report, pass
   :func:`clvlab.run_folder.read_finished`, and whose tables the run folder holds;
3. re-runs ``old`` and ``new`` where asked, on what the kill left, and records whose tables
   that gives and whether it was "up to date".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pandas as pd

import clvlab.io
import clvlab.run_folder
from clvlab.config import load_config
from clvlab.errors import ClvlabInputError
from clvlab.run_folder import read_finished
from clvlab.runs import run

_real = os


class _Counting:
    """``os`` for clvlab's writers, counting renames and SIGKILLing the process at ``kill_at``."""

    def __init__(self) -> None:
        self.count, self.kill_at = 0, None

    def __getattr__(self, name):
        return getattr(_real, name)

    def _tick(self) -> None:
        self.count += 1
        if self.kill_at is not None and self.count >= self.kill_at:
            _real.kill(_real.getpid(), signal.SIGKILL)

    def replace(self, a, b):
        self._tick()
        _real.replace(a, b)

    def rename(self, a, b):
        self._tick()
        _real.rename(a, b)


COUNTER = _Counting()
clvlab.io.os = COUNTER
clvlab.run_folder.os = COUNTER


def tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted(run_dir.glob("*.parquet"))}


def same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> bool:
    if a.keys() != b.keys():
        return False
    try:
        for k in a:
            pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
    except AssertionError:
        return False
    return True


def whose(run_dir: Path, refs: dict[str, dict]) -> str:
    got = tables(run_dir)
    return next((name for name, ref in refs.items() if same(got, ref)), "neither")


def finished(run_dir: Path, report_dir: Path | None = None) -> bool:
    try:
        read_finished(run_dir, report_dir=report_dir)
    except ClvlabInputError:
        return False
    return True


def quiet_run(cfg: dict, root: Path, lines: list[str] | None = None) -> bool:
    """Run ``cfg`` under ``root``; True when it was up to date (nothing recomputed)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        up_to_date = run(load_config(cfg), root=root) is None
    if lines is not None:
        lines += out.getvalue().splitlines()
    return up_to_date


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    root, old, new = Path(spec["root"]), spec["old"], spec["new"]
    pristine, work, ref = Path(spec["pristine"]), root / "work", root / "ref"
    name = old["name"]

    def folders(base: Path) -> tuple[Path, Path]:
        return base / "runs" / name, base / "reports" / name

    shutil.copytree(pristine, ref, symlinks=True)
    refs = {"old": tables(folders(pristine)[0])}
    COUNTER.count, log = 0, []
    quiet_run(new, ref, log)  # uninterrupted: the reference tables of the new config
    renames = COUNTER.count
    refs["new"] = tables(folders(ref)[0])

    points = sorted(
        {max(1, min(renames, round(f * renames))) for f in spec["fractions"]}
        | {renames - j for j in spec.get("from_end", [])}
    )
    rerun_old = {i % len(points) for i in spec.get("rerun_old", range(len(points)))}
    rerun_new = {i % len(points) for i in spec.get("rerun_new", [])}
    out = []
    for i, k in enumerate(points):
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(pristine, work, symlinks=True)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child: re-run with the new setting, killed before its k-th rename
            try:
                COUNTER.count, COUNTER.kill_at = 0, k
                quiet_run(new, work)
            finally:
                os._exit(3)  # reached only if the run made fewer than k renames
        _, status = os.waitpid(pid, 0)
        COUNTER.kill_at = None
        run_dir, report_dir = folders(work)
        left = dict(
            kill_at=k,
            of=renames,
            killed=os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
            run_folder_finished=finished(run_dir),
            finished_with_report=finished(run_dir, report_dir),
            tables=whose(run_dir, refs) if run_dir.is_dir() else "no folder",
        )
        if i in rerun_old:
            left["old_rerun_up_to_date"] = quiet_run(old, work)
            left["old_rerun_tables"] = whose(run_dir, refs)
        if i in rerun_new:
            left["new_rerun_up_to_date"] = quiet_run(new, work)
            left["new_rerun_tables"] = whose(run_dir, refs)
        out.append(left)
    print(json.dumps(dict(renames=renames, log=log, points=out)))


if __name__ == "__main__":
    main(sys.argv[1])
