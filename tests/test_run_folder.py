"""Run folders that cannot look finished when they are not (clvlab.run_folder, clvlab.runs.run).

A re-run with a changed setting is killed (SIGKILL) at chosen moments: before its first write,
among the tables, in the report, on each side of the two folder swaps. Every kill must leave
the old run whole, and re-running either config must give exactly the tables of an
uninterrupted run. A second writer is refused while the first holds the folder; a folder
changed after its run finished is refused by every reader. Fits are MAP on the CDNOW sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from test_study import MAP_CONFIG

from clvlab.cli import main
from clvlab.config import load_config
from clvlab.errors import ClvlabInputError
from clvlab.io import atomic_path
from clvlab.run_folder import config_changes, read_finished, writer_lock
from clvlab.runs import run

HERE = Path(__file__).resolve().parent
OLD = {**MAP_CONFIG, "outputs": {"runs_dir": "runs", "reports_dir": "reports"}}
NEW = {**OLD, "clv": {**OLD["clv"], "margin": 0.5}}
ALL_KILL_POINTS = os.environ.get("CLVLAB_KILL_POINTS") == "all"
"""``CLVLAB_KILL_POINTS=all``: kill before every one of the re-run's renames (minutes), not a sample."""


def _run(cfg: dict, root: Path, **kw) -> list[str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(load_config(cfg), root=root, **kw)
    return out.getvalue().splitlines()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished MAP run of OLD; returns (root, run folder, report folder)."""
    root = tmp_path_factory.mktemp("finished")
    _run(OLD, root)
    return root, root / "runs" / OLD["name"], root / "reports" / OLD["name"]


@pytest.fixture(scope="module")
def killed(finished, tmp_path_factory):
    """The kill harness's report on re-runs of NEW over the finished OLD run (tests/kill_harness.py)."""
    root = tmp_path_factory.mktemp("kills")
    fractions = [i / 66 for i in range(1, 67)] if ALL_KILL_POINTS else [0.5]
    spec = dict(root=str(root), pristine=str(finished[0]), old=OLD, new=NEW, fractions=fractions,
                from_end=[0, 1, 2], rerun_old=None if ALL_KILL_POINTS else [-3, -2], rerun_new=[-2])  # fmt: skip
    if spec["rerun_old"] is None:
        del spec["rerun_old"]
    (root / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, str(HERE / "kill_harness.py"), str(root / "spec.json")],
                          capture_output=True, text=True, timeout=3600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_killed_rerun_leaves_the_old_run_whole_and_both_configs_give_exact_tables(killed):
    """Kill points (before the k-th of the re-run's R renames): one in the middle (among the
    report's figures) and the last three: k = R-2 (the old report set aside, the new one not in
    yet), R-1 (the new report in, the old run folder still there) and R (the old run folder set
    aside, the new one not in yet). After every kill the run folder holds the old run, whole;
    once the new report is in, the pair is no longer 'finished with its report', so the old
    config is rebuilt, not called up to date. ``CLVLAB_KILL_POINTS=all``: every k."""
    renames, points = killed["renames"], killed["points"]
    assert renames >= 40, renames  # tables (Parquet + CSV), figures, two models, the record, the swaps
    assert len(points) >= (renames if ALL_KILL_POINTS else 4)
    assert {p["kill_at"] for p in points} >= {renames - 2, renames - 1, renames}
    for p in points:
        assert p["killed"], p
        assert p["run_folder_finished"] and p["tables"] == "old", p  # the old run, whole
        assert p["finished_with_report"] == (p["kill_at"] <= renames - 2), p
        if "old_rerun_tables" in p:
            assert p["old_rerun_tables"] == "old", p
            assert p["old_rerun_up_to_date"] == p["finished_with_report"], p
        if "new_rerun_tables" in p:
            assert p["new_rerun_tables"] == "new" and not p["new_rerun_up_to_date"], p
    assert sum("old_rerun_tables" in p for p in points) >= 2 and sum("new_rerun_tables" in p for p in points) == 1
    assert any("old_rerun_tables" in p and not p["old_rerun_up_to_date"] for p in points)  # a rebuild, checked


def test_a_run_says_which_settings_differ_before_it_replaces_a_finished_run(killed):
    assert any("holds a finished run of another config: clv.margin: 0.25 -> 0.5. It is replaced when this run "
               "completes" in line for line in killed["log"]), killed["log"]  # fmt: skip
    assert config_changes({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 4}) == [
        "a.c: 2 -> 3",
        "d: '<unset>' -> 4",
    ]


def test_a_second_writer_is_refused_with_the_first_ones_pid(finished, tmp_path, capsys):
    root, run_dir, _ = finished
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from clvlab.run_folder import writer_lock
        with writer_lock({str(run_dir)!r}):
            print("ready", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        stamp = (run_dir / "metadata.json").stat().st_mtime_ns
        cfg = tmp_path / "cfg.json"
        cfg.write_text(
            json.dumps({**NEW, "outputs": {"runs_dir": str(root / "runs"), "reports_dir": str(root / "reports")}})
        )
        import yaml

        (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(json.loads(cfg.read_text())))
        assert main(["run", "--config", str(tmp_path / "cfg.yaml")]) == 2
        err = capsys.readouterr().err
        assert f"{run_dir} is being written by another clvlab run (pid {holder.pid}, started" in err, err
        assert (run_dir / "metadata.json").stat().st_mtime_ns == stamp  # nothing touched
    finally:
        holder.communicate("\n", timeout=30)
    with writer_lock(run_dir):  # released when its holder ends
        pass


def test_two_runs_at_once_one_finishes_the_other_is_refused(finished, tmp_path):
    """Two `clvlab run` processes started together on one (changed) config: exactly one writes."""
    import shutil

    import yaml

    shutil.copytree(finished[0], tmp_path, dirs_exist_ok=True)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**NEW, "outputs": {"runs_dir": str(tmp_path / "runs"),
                                                      "reports_dir": str(tmp_path / "reports")}}))  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-m", "clvlab.cli", "run", "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert "is being written by another clvlab run" in loser and "Traceback" not in loser, loser
    meta = read_finished(tmp_path / "runs" / OLD["name"], report_dir=tmp_path / "reports" / OLD["name"])
    assert meta["config"]["clv"]["margin"] == 0.5


def test_a_live_writers_temporary_file_is_not_removed_as_stale(tmp_path):
    """Stale temporaries are those of dead processes; a live writer's (e.g. another process
    writing the same table) is left alone."""
    target = tmp_path / "t.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".t.csv.{dead.stdout.strip()}-abc.tmp"
    stale.write_text("left by a killed writer")
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE)
    try:
        alive = tmp_path / f".t.csv.{live.pid}-def.tmp"
        alive.write_text("being written")
        with atomic_path(target) as tmp:
            tmp.write_text("x\n")
        assert not stale.exists() and alive.exists() and target.read_text() == "x\n"
    finally:
        live.communicate(b"\n", timeout=30)


@pytest.mark.parametrize("damage, text", [
    ("delete", "file(s) of the finished run are missing: ['clv_customers.parquet']"),
    ("truncate", "file(s) differ from what the run wrote"),
    ("truncate_record", "metadata.json: unreadable"),
    ("no_record", "no metadata.json (not a finished clvlab run"),
])  # fmt: skip
def test_a_folder_changed_after_its_run_is_refused_by_every_reader(finished, tmp_path, capsys, damage, text):
    import shutil

    _, src, _ = finished
    run_dir = tmp_path / "copy"
    shutil.copytree(src, run_dir)
    if damage == "delete":
        (run_dir / "clv_customers.parquet").unlink()
    elif damage == "truncate":
        p = run_dir / "bgnbd" / "posterior.nc"
        p.write_bytes(p.read_bytes()[:1000])
    elif damage == "truncate_record":
        p = run_dir / "metadata.json"
        p.write_text(p.read_text()[:500])
    else:
        (run_dir / "metadata.json").unlink()
    with pytest.raises(ClvlabInputError, match="run folder") as exc:
        read_finished(run_dir)
    assert text in str(exc.value)
    rfm = tmp_path / "rfm.csv"
    pd.read_parquet(src / "rfm.parquet").head(20).to_csv(rfm, index=False)
    assert main(["score", "--run", str(run_dir), "--input", str(rfm), "--out", str(tmp_path / "s.csv")]) == 2
    assert text in capsys.readouterr().err
    assert main(["compare", "--runs", str(run_dir), "--out", str(tmp_path / "cmp")]) == 2
    assert text in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "cmp").exists()


def test_a_damaged_run_folder_is_rebuilt_and_said_so(finished, tmp_path):
    import shutil

    from clvlab.runs import _previous_run, _say_what_is_replaced
    from clvlab.study import Study

    copy = tmp_path / "root"
    shutil.copytree(finished[0], copy)
    (copy / "runs" / OLD["name"] / "rfm.csv").write_text("edited\n")
    lines: list[str] = []
    study = Study(load_config(OLD), root=copy, log=lines.append)
    previous, why_not = _previous_run(study)
    assert previous is None and "rfm.csv" in why_not
    _say_what_is_replaced(study, previous, why_not)
    assert "does not hold a finished run" in lines[-1] and "it is rebuilt" in lines[-1]


@pytest.mark.parametrize("key", ["runs_dir", "reports_dir"])
def test_an_output_folder_that_is_a_file_is_named_before_any_work(tmp_path, key):
    (tmp_path / "afile").write_text("not a folder")
    cfg = {**OLD, "outputs": {**OLD["outputs"], key: "afile/sub"}}
    with pytest.raises(ClvlabInputError, match=f"outputs.{key}: .*afile is a file, not a folder"):
        run(load_config(cfg), root=tmp_path)
    assert not list(tmp_path.glob("runs/*/*.parquet"))


@pytest.mark.parametrize("damage", ["metadata.json", "posterior.nc"])
def test_a_truncated_model_file_is_named_when_loading(finished, tmp_path, damage):
    import shutil

    from clvlab.models.bgnbd import BGNBD

    folder = tmp_path / "bgnbd"
    shutil.copytree(finished[1] / "bgnbd", folder)
    p = folder / damage
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 3])
    with pytest.raises(ClvlabInputError, match=f"{damage}: unreadable .*damaged or truncated"):
        BGNBD.load(folder)


def test_score_names_missing_columns_and_flags_a_table_in_another_unit(finished, tmp_path, capsys):
    _, run_dir, _ = finished
    rfm = pd.read_parquet(run_dir / "rfm.parquet").head(50)
    no_seg = tmp_path / "no_seg.csv"
    rfm.drop(columns="cohort").to_csv(no_seg, index=False)
    out = tmp_path / "s.csv"
    assert main(["score", "--run", str(run_dir), "--input", str(no_seg), "--out", str(out)]) == 2
    assert "the RFM table has no column(s) ['cohort']" in capsys.readouterr().err and not out.exists()
    days = tmp_path / "days.csv"
    rfm.assign(recency=rfm["recency"] * 7, T=rfm["T"] * 7).to_csv(days, index=False)
    with pytest.warns(
        UserWarning, match=r"T reaches .* the run's calibration only .* is the table in another time unit"
    ):
        assert main(["score", "--run", str(run_dir), "--input", str(days), "--out", str(out)]) == 0


def test_compare_out_at_an_existing_file_is_named_before_the_work(finished, tmp_path, capsys):
    _, run_dir, _ = finished
    target = tmp_path / "cmp.txt"
    target.write_text("keep me")
    assert main(["compare", "--runs", str(run_dir), "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err and target.read_text() == "keep me"
