"""The Spark engine of the feature step gives the DuckDB results, bit for bit.

Spark runs in local mode (``local[2]``) on the machine's Java. Each feature is one query
definition (clvlab.features.dialect spells the few forms the dialects disagree on), so these
tests compare whole tables with ``check_exact=True``: floats to the last bit, dtypes, row
order. Inputs: full CDNOW from pandas, and a simulated four-channel log with integer ids and a
missing segment label, read from a Parquet folder of part files (as a lake holds it) and as a
table of the Spark session. Only where Java (or pyspark) is absent do the Spark tests skip,
saying why, and under ``CI=true`` they fail instead: ``.ci/run`` installs a Java runtime when
the machine lacks one.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from clvlab import features as F
from clvlab.data.simulate import simulate
from clvlab.errors import ClvlabInputError
from clvlab.features import kpis, lapse
from clvlab.features._sql import open_source
from clvlab.features.dialect import DUCKDB, SPARK, num
from clvlab.features.spark import spark_unavailable

CAL, OBS = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def spark():
    reason = spark_unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":  # .ci/run installs Java: missing there is a failure
            pytest.fail(f"CI=true but the Spark engine cannot run: {reason}")
        pytest.skip(f"Spark engine not testable here: {reason}")
    from clvlab.features.spark import spark_session

    return spark_session("local[2]", {"spark.sql.shuffle.partitions": "4"})


def assert_same(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(duck, spark, check_exact=True)
    assert duck.attrs == spark.attrs


# ------------------------------------------------------------------------------------ CDNOW
CDNOW_FEATURES = {
    "calibration_holdout_W": lambda tx, e: F.calibration_holdout(tx, CAL, OBS, "W", cohort_freq="W", engine=e),
    "calibration_holdout_whole_months": lambda tx, e: F.calibration_holdout(
        tx, CAL, OBS, "M", whole_periods=True, cohort_freq="Q", engine=e
    ),
    "rfm_summary_whole_weeks_from_start": lambda tx, e: F.rfm_summary(
        tx, OBS, "W", whole_periods=True, calibration_start="1997-02-01", cohort_freq="D", engine=e
    ),
    "cohorts": lambda tx, e: F.cohorts(tx, "M", observation_end=CAL, engine=e).customers,
    "interpurchase_times": lambda tx, e: F.interpurchase_times(tx, observation_end=CAL, engine=e),
    "lapse_table": lambda tx, e: lapse.lapse_table(tx, CAL, 8.0, "W", cohort_freq="Y", engine=e),
    "early_behaviour": lambda tx, e: F.early_behaviour(tx, CAL, early_days=90, engine=e),
    "channel_kpis": lambda tx, e: kpis.channel_kpis(tx, CAL, segment=None, engine=e),
    "retention_matrix": lambda tx, e: kpis.retention_matrix(tx, CAL, cohort_freq="Q", period="M", engine=e),
    "stage_migration": lambda tx, e: kpis.stage_migration(tx, "1997-06-30", CAL, engine=e),
}


@pytest.mark.parametrize("name", list(CDNOW_FEATURES))
def test_spark_equals_duckdb_on_cdnow(spark, cdnow_tx, name):
    feature = CDNOW_FEATURES[name]
    assert_same(feature(cdnow_tx, "duckdb"), feature(cdnow_tx, "spark"))


# ------------------------------------------------------------- a simulated lake, in part files
@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Four channels, a region column, integer customer ids (string order differs from numeric),
    a missing region on one first purchase day, written as four Parquet part files."""
    tx = simulate(n_customers=1200, seed=11).transactions
    tx = tx.assign(customer_id=tx["customer_id"].factorize()[0] + 1)  # 1, 2, ..., 1200 as integers
    rng = np.random.default_rng(3)
    tx["region"] = rng.choice(["north", "south", "west"], size=len(tx))
    first = tx.groupby("customer_id")["date"].transform("min") == tx["date"]
    tx.loc[first & (tx["customer_id"] == 7), "region"] = None
    tx = tx.sample(frac=1.0, random_state=5).reset_index(drop=True)  # part files not in id order
    folder = tmp_path_factory.mktemp("lake") / "transactions"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(tx)), 4)):
        part = tx.iloc[rows]
        # microsecond timestamps, as Spark and lake writers store them (Spark cannot read nanoseconds)
        part.to_parquet(folder / f"part-{i:05d}.parquet", index=False, coerce_timestamps="us")
    return folder, tx


def test_spark_equals_duckdb_on_a_parquet_folder_of_part_files(spark, lake):
    folder, tx = lake
    cal, obs = tx["date"].quantile(0.6).normalize(), tx["date"].max().normalize()
    segs = ("channel", "region")
    duck = F.calibration_holdout(folder, cal, obs, "W", segment_cols=segs)
    assert_same(duck, F.calibration_holdout(folder, cal, obs, "W", segment_cols=segs, engine="spark"))
    assert duck["customer_id"].tolist() == sorted(map(str, tx["customer_id"].unique()))  # string order
    assert duck.loc[duck["customer_id"] == "7", "region"].isna().all()  # NULL at first purchase stays NULL
    assert_same(
        F.cohorts(folder, "W", segment_cols=segs).sizes, F.cohorts(folder, "W", segment_cols=segs, engine="spark").sizes
    )
    assert_same(
        kpis.channel_kpis(folder, cal, segment="channel"),
        kpis.channel_kpis(folder, cal, segment="channel", engine="spark"),
    )


def test_an_existing_spark_table_is_read_in_place(spark, lake):
    folder, tx = lake
    spark.read.parquet(str(folder)).createOrReplaceTempView("lake_transactions")
    table = spark.table("lake_transactions")
    cal = tx["date"].quantile(0.6).normalize()
    spark_table = lapse.lapse_table(table, cal, 6.0, "W", segment_cols=["channel"])  # engine inferred
    assert_same(lapse.lapse_table(tx, cal, 6.0, "W", segment_cols=["channel"]), spark_table)
    assert open_source(table).engine == "spark"


def test_a_categorical_segment_column_reaches_spark_as_its_labels(spark, cdnow_sample_tx):
    """pandas categoricals (which Arrow would hand Spark as dictionaries) go in as plain labels."""
    tx = cdnow_sample_tx.assign(region=pd.Categorical(np.where(cdnow_sample_tx.index % 3, "north", "south")))
    duck = F.cohorts(tx, "M", segment_cols=["region"]).customers
    on_spark = F.cohorts(tx, "M", segment_cols=["region"], engine="spark").customers
    assert on_spark["region"].tolist() == duck["region"].astype(str).tolist()
    assert_same(duck.drop(columns="region"), on_spark.drop(columns="region"))


# ------------------------------------------------------------------------ errors, both engines
def test_bad_rows_are_reported_the_same_on_spark(spark, cdnow_sample_tx):
    tx = cdnow_sample_tx.head(50).copy()
    tx.loc[3, "amount"] = -1.0
    tx.loc[5, "amount"] = np.nan
    messages = {}
    for engine in ("duckdb", "spark"):
        with pytest.raises(ClvlabInputError) as err:
            F.rfm_summary(tx, "1997-09-30", engine=engine)
        messages[engine] = err.value.problems
    assert len(messages["spark"]) == 2
    assert [m.split(" (e.g.")[0] for m in messages["spark"]] == [m.split(" (e.g.")[0] for m in messages["duckdb"]]


def test_engine_errors_name_the_argument(spark, tmp_path, cdnow_sample_tx):
    with pytest.raises(ClvlabInputError, match="engine='presto'"):
        F.rfm_summary(cdnow_sample_tx, CAL, engine="presto")
    csv = tmp_path / "tx.csv"
    cdnow_sample_tx.head(5).to_csv(csv, index=False)
    with pytest.raises(ClvlabInputError, match="engine='spark' reads Parquet"):
        F.rfm_summary(csv, CAL, engine="spark")
    with pytest.raises(ClvlabInputError, match="use engine='spark'"):
        F.rfm_summary(spark.createDataFrame(cdnow_sample_tx.head(5)), CAL, engine="duckdb")
    with pytest.raises(ClvlabInputError, match="no such Parquet file or folder"):
        F.rfm_summary(tmp_path / "absent.parquet", CAL, engine="spark")
    cdnow_sample_tx.head(5).to_parquet(tmp_path / "ns.parquet")  # pandas' default: nanosecond timestamps
    with pytest.raises(ClvlabInputError, match="nanosecond timestamps"):
        F.rfm_summary(tmp_path / "ns.parquet", CAL, engine="spark")


# --------------------------------------------------------------------- the dialect, no engine
def test_dialects_differ_only_where_spelt():
    assert DUCKDB.ident("T") == '"T"' and SPARK.ident("T") == "`T`"
    assert num(30.4375) == "CAST(30.4375 AS DOUBLE)"
    assert DUCKDB.months_between("a", "b") == SPARK.months_between("a", "b")  # one portable form
    assert "FILTER (WHERE hold)" in SPARK.ordered_avg("amount", "day", "hold")
    assert SPARK.ordered_sum("x", "x").startswith("aggregate(array_sort(collect_list(x))")


def test_duckdb_folder_of_part_files_needs_parquet(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClvlabInputError, match="holds no .parquet part files"):
        F.rfm_summary(tmp_path / "empty", CAL)


# ----------------------------------------------------------------------------- a run config
def test_a_run_config_with_engine_spark_gives_the_duckdb_features(spark, tmp_path):
    """``features.engine: spark`` routes every feature query of the pipeline through Spark (RFM,
    KPIs, retention, stage migration, cohorts, early behaviour, the lapse table): same tables."""
    from clvlab.config import load_config
    from clvlab.study import Study

    cfg = {
        "name": "eng", "seed": 3,
        "data": {"source": "simulated", "segment_cols": ["channel"], "simulation": {"seed": 3, "channels": {
            "a": {"customers": 400, "r": 0.4, "alpha": 3.0, "a": 0.5, "b": 4.0},
            "b": {"customers": 400, "r": 0.2, "alpha": 6.0, "a": 1.2, "b": 2.0}}}},
        "features": {"calibration_end": "2020-12-31", "observation_end": "2021-06-29", "segment": "channel",
                     "cohort_freq": "M", "behaviour": {"k": 3, "stability_replicates": 2}},
        "acquisition": {"cac": {"a": 30.0, "b": 10.0}},
        "outputs": {"runs_dir": str(tmp_path / "runs"), "reports_dir": str(tmp_path / "reports")},
    }  # fmt: skip
    studies = {}
    for engine in ("duckdb", "spark"):
        spark_section = {"spark": {"master": "local[2]"}} if engine == "spark" else {}
        studies[engine] = Study({**cfg, "features": {**cfg["features"], "engine": engine, **spark_section}},
                                log=lambda m: None, progress=False)  # fmt: skip
    duck, sp = studies["duckdb"].features(), studies["spark"].features()
    assert studies["spark"].feature_source().engine == "spark"
    for name in ("rfm", "cohort_sizes", "rfm_segments", "interpurchase", "kpis", "retention", "migration"):
        assert_same(getattr(duck, name), getattr(sp, name))
    assert duck.hash == sp.hash  # so every cached fit of one engine serves the other
    assert_same(duck.behaviour.early, sp.behaviour.early)
    tables = [lapse.lapse_table(s.feature_source(), "2020-12-31", 8.0, "W", segment_cols=["channel"])
              for s in studies.values()]  # fmt: skip
    assert_same(*tables)
    with pytest.raises(ClvlabInputError, match="spark section is set but engine is 'duckdb'"):
        load_config({**cfg, "features": {**cfg["features"], "spark": {"master": "local[2]"}}})


# ------------------------------------------------------- folders of part files that drifted
def _part(folder, name, df):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), folder / name, coerce_timestamps="us")


LAKE_BASE = pd.DataFrame({"customer_id": ["1", "2", "3"], "date": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-02-01"]),
                          "amount": [1.5, 2.0, 3.0], "channel": ["a", "b", "a"]})  # fmt: skip
DRIFTED = {
    "empty": ({}, "folder {f} holds no .parquet part files (it is empty)"),
    "only_text": ({"README.txt": "notes"}, "folder {f} holds no .parquet part files (it holds 1 other file(s), e.g. README.txt)"),
    "corrupt_part": ({"p0.parquet": LAKE_BASE, "p1.parquet": b"PAR1 truncated"}, "part p1.parquet: not a readable Parquet file"),
    "text_amount": ({"p0.parquet": LAKE_BASE, "p1.parquet": LAKE_BASE.assign(amount=["4", "5", "6"])},
                    "column 'amount' has different types across the part files: double in 1 (p0.parquet); string in 1 (p1.parquet)"),
    "int_amount": ({"p0.parquet": LAKE_BASE, "p1.parquet": LAKE_BASE.assign(amount=[4, 5, 6])},
                   "column 'amount' has different types across the part files: double in 1 (p0.parquet); int64 in 1 (p1.parquet)"),
    "no_channel_later": ({"p0.parquet": LAKE_BASE, "p1.parquet": LAKE_BASE.drop(columns="channel")},
                         "column 'channel' is missing from 1 of 2 part files (p1.parquet)"),
    "no_channel_first": ({"p0.parquet": LAKE_BASE.drop(columns="channel"), "p1.parquet": LAKE_BASE},
                         "column 'channel' is missing from 1 of 2 part files (p0.parquet)"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(DRIFTED))
def test_a_drifted_folder_is_refused_the_same_way_by_both_engines(case, spark, tmp_path):
    """Left to themselves the engines differ: DuckDB reads text amounts as numbers and drops a
    column the first part lacks, Spark fills it with NULL; each has its own raw error."""
    files, expected = DRIFTED[case]
    folder = tmp_path / case
    folder.mkdir()
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            _part(folder, name, content)
        else:
            (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    messages = {}
    for engine in ("duckdb", "spark"):
        with pytest.raises(ClvlabInputError) as err:
            F.rfm_summary(folder, "2020-03-01", segment_cols=["channel"], engine=engine)
        messages[engine] = err.value.problems
    assert messages["duckdb"] == messages["spark"]
    assert any(m.startswith(expected.format(f=folder)) for m in messages["duckdb"]), messages["duckdb"]


def test_stray_files_and_hive_folders_are_read_the_same_by_both_engines(spark, tmp_path):
    flat = tmp_path / "flat"
    _part(flat, "p0.parquet", LAKE_BASE)
    (flat / "README.txt").write_text("written by the nightly job")  # ignored by both: parts are *.parquet
    (flat / "_SUCCESS").write_text("")
    hive = tmp_path / "hive"
    _part(hive / "region=north", "p0.parquet", LAKE_BASE)
    _part(hive / "region=south", "p0.parquet", LAKE_BASE.assign(customer_id=["4", "5", "6"]))
    for folder, segs in ((flat, ["channel"]), (hive, ["channel", "region"])):
        duck = F.rfm_summary(folder, "2020-03-01", segment_cols=segs)
        assert_same(duck, F.rfm_summary(folder, "2020-03-01", segment_cols=segs, engine="spark"))
    assert duck["region"].tolist() == ["north"] * 3 + ["south"] * 3


def test_missing_folders_and_an_unreachable_master_are_named(tmp_path):
    import socket

    for engine in ("duckdb", "spark"):
        with pytest.raises(ClvlabInputError, match="no such Parquet"):
            F.rfm_summary(tmp_path / "no_such_lake", CAL, engine=engine)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from clvlab.features.spark import spark_session

    if spark_unavailable() is None:
        with pytest.raises(ClvlabInputError, match=rf"spark.master 'spark://127.0.0.1:{port}': no master answers at "
                                                   rf"127.0.0.1:{port} \(Connection refused\)"):  # fmt: skip
            spark_session(f"spark://127.0.0.1:{port}")
        with pytest.raises(ClvlabInputError, match="expected spark://host:port"):
            spark_session("spark://nohostport")
