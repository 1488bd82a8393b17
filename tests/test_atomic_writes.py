"""A writer killed (SIGKILL) at any moment leaves the old artifact or the new one, never a mix:
for a saved model (a folder swapped in whole) and for a table (`clvlab rfm`'s output)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from clvlab.errors import ClvlabInputError
from clvlab.io import atomic_dir, write_table

KILLS = 10


def _kill_after(script: str, delay: float) -> None:
    """Run ``script`` in a fresh interpreter, wait for its 'ready' line, SIGKILL it after ``delay``."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def two_fits(tmp_path_factory, cdnow_sample_tx):
    """Two different saved spend models (pooled / partial by cohort, MAP: seconds)."""
    from clvlab.features import calibration_holdout
    from clvlab.models.gamma_gamma import GammaGamma

    root = tmp_path_factory.mktemp("fits")
    rfm = calibration_holdout(cdnow_sample_tx, "1997-09-30", "1998-06-30", "W", cohort_freq="M")
    rep = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    a = GammaGamma(pooling="pooled").fit(rep, method="map").save(root / "a")
    b = GammaGamma(pooling="partial", segment="cohort").fit(rep.iloc[:500], method="map").save(root / "b")
    return root, a, b


@pytest.mark.slow
def test_killed_model_save_leaves_the_old_or_the_new_model(two_fits, tmp_path):
    from clvlab.models.gamma_gamma import GammaGamma

    root, a, b = two_fits
    target = tmp_path / "model"
    ref = {name: GammaGamma.load(path) for name, path in (("a", a), ("b", b))}
    script = textwrap.dedent(f"""
        import itertools
        from clvlab.models.gamma_gamma import GammaGamma
        models = [GammaGamma.load({str(a)!r}), GammaGamma.load({str(b)!r})]
        models[0].save({str(target)!r})
        print("ready", flush=True)
        for m in itertools.cycle(models):
            m.save({str(target)!r})
            with open({str(tmp_path / "saves.log")!r}, "a") as log:
                log.write("saved\\n")
    """)
    rng = np.random.default_rng(0)
    seen = set()
    for delay in rng.uniform(0.0, 0.8, KILLS):
        _kill_after(script, float(delay))
        got = GammaGamma.load(target)
        name = "a" if got.segments_ == ref["a"].segments_ else "b"
        want = ref[name]
        # everything in the folder belongs to the same fit
        assert got.segments_ == want.segments_ and got._config() == want._config()
        for var in ("p", "q", "gamma"):
            np.testing.assert_array_equal(got.posterior_[var].values, want.posterior_[var].values)
        pd.testing.assert_frame_equal(got.data_, want.data_)
        seen.add(name)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("model", "saves.log")]
        assert all(n.startswith(".model.") for n in leftovers), leftovers
    # the kills landed while saving: the writers completed many saves between them (both models seen
    # is likely but not certain, so it is not asserted)
    assert len((tmp_path / "saves.log").read_text().splitlines()) > KILLS, seen
    # the next save cleans up what the killed writers left
    (tmp_path / "saves.log").unlink()
    GammaGamma.load(a).save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_swap_killed_between_the_renames_is_recovered(two_fits, tmp_path):
    from clvlab.models.gamma_gamma import GammaGamma

    _, a, _ = two_fits
    target = tmp_path / "model"
    GammaGamma.load(a).save(target)
    os.rename(target, tmp_path / ".model.old-123")  # as if killed after setting the old folder aside
    got = GammaGamma.load(target)
    assert got.segments_ == GammaGamma.load(a).segments_ and target.is_dir()


def test_model_save_refuses_a_folder_with_other_files(two_fits, tmp_path):
    from clvlab.models.gamma_gamma import GammaGamma

    _, a, _ = two_fits
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ClvlabInputError, match="holds other files"):
        GammaGamma.load(a).save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_atomic_dir_failure_keeps_the_old_folder(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "x.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "x.txt").write_text("new")
        raise RuntimeError("writer failed")
    assert (target / "x.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["d"]


@pytest.mark.slow
def test_killed_table_write_leaves_the_old_or_the_new_table(tmp_path):
    target = tmp_path / "rfm.parquet"
    n = 300_000
    tables = {k: pd.DataFrame({"customer_id": np.arange(n).astype(str), "frequency": np.full(n, float(k))})
              for k in (1, 2)}  # fmt: skip
    write_table(tables[1], target)
    script = textwrap.dedent(f"""
        import itertools
        import numpy as np, pandas as pd
        from clvlab.io import write_table
        n = {n}
        tables = [pd.DataFrame({{"customer_id": np.arange(n).astype(str), "frequency": np.full(n, float(k))}})
                  for k in (1, 2)]
        print("ready", flush=True)
        for t in itertools.cycle(tables):
            write_table(t, {str(target)!r})
            with open({str(tmp_path / "writes.log")!r}, "a") as log:
                log.write("written\\n")
    """)
    rng = np.random.default_rng(1)
    seen = set()
    for delay in rng.uniform(0.0, 0.6, KILLS):
        _kill_after(script, float(delay))
        got = pd.read_parquet(target)
        k = int(got["frequency"].iloc[0])
        pd.testing.assert_frame_equal(got, tables[k])
        seen.add(k)
    assert len((tmp_path / "writes.log").read_text().splitlines()) > KILLS, seen  # killed while writing
    (tmp_path / "writes.log").unlink()
    write_table(tables[1], target)  # the next write removes the killed writers' temporary files
    assert [p.name for p in tmp_path.iterdir()] == ["rfm.parquet"]
