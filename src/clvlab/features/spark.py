"""Apache Spark engine of the feature step (``engine="spark"``).

The feature queries are the DuckDB ones (:mod:`clvlab.features.dialect` spells the few forms
the dialects disagree on), run with ``spark.sql`` on a temporary view of the log. The log
stays where Spark holds it (a lake's Parquet part files, a table of the session); only the
per-customer result of each query (``toPandas``, through Arrow) and a few counts come back to
the driver, which fits the models.

Point it at a cluster with ``spark.master`` (run config ``features.spark.master``, e.g.
``spark://host:7077``, ``yarn``, ``k8s://...``), or start the driver with ``spark-submit`` /
``pyspark`` and the active session is used as it is. Timestamps become days with
``CAST(date AS DATE)`` in the session time zone (sessions made here use UTC).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from clvlab.errors import ClvlabInputError
from clvlab.features._sql import Source, is_spark_frame, parquet_files
from clvlab.features.dialect import SPARK
from clvlab.features.parquet_parts import NANOS_FIX, check_parquet_input, is_glob

__all__ = ["SparkSource", "spark_session", "spark_unavailable"]

SESSION_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
"""Settings of the sessions :func:`spark_session` makes (a ``conf`` entry overrides one)."""


def spark_unavailable() -> str | None:
    """Why Spark cannot run here (no pyspark, no Java), or None when it can."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (install clvlab with the 'spark' extra: pip install 'clvlab[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (java_home and (Path(java_home) / "bin" / "java").exists())):
        return "no Java runtime on PATH or in JAVA_HOME: Spark needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)"
    return None


def spark_session(master: str | None = None, conf: Mapping[str, Any] | None = None, *, app_name: str = "clvlab") -> Any:
    """The SparkSession the feature step runs on.

    Parameters
    ----------
    master : str, optional
        ``spark.master``: ``local[2]``, ``spark://host:7077``, ``yarn``, ... None: the active
        session if there is one (e.g. under ``spark-submit``), else Spark's default (``local[*]``).
    conf : mapping, optional
        Further Spark settings (``spark.executor.memory``, ...), applied over :data:`SESSION_DEFAULTS`.
    app_name : str
        The application name shown by the cluster manager.

    Returns
    -------
    pyspark.sql.SparkSession
    """
    if (reason := spark_unavailable()) is not None:
        raise ClvlabInputError([f"engine='spark': {reason}"], what="Spark engine")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None and not conf:
        return active
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        check_master(master)
        builder = builder.master(master)
    for key, value in {**SESSION_DEFAULTS, **dict(conf or {})}.items():
        builder = builder.config(key, str(value))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


MASTER_CONNECT_TIMEOUT_S = 5.0
"""How long ``spark_session`` waits for a ``spark://`` master to accept a connection."""


def check_master(master: str, timeout: float = MASTER_CONNECT_TIMEOUT_S) -> None:
    """Refuse a standalone master (``spark://host:port[,host2:port2]``) none of whose hosts accepts
    a TCP connection within ``timeout`` (Spark itself retries for over a minute, then fails with
    "Cannot call methods on a stopped SparkContext"). Other masters (local, yarn, k8s) are left
    to Spark."""
    import socket

    if not master.startswith("spark://"):
        return
    tried = []
    for hostport in master[len("spark://") :].split(","):
        host, _, port = hostport.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ClvlabInputError([f"spark.master {master!r}: expected spark://host:port[,host:port...]"],
                                   what="Spark engine")  # fmt: skip
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return
        except OSError as exc:
            tried.append(f"{host}:{port} ({exc.strerror or type(exc).__name__})")
    raise ClvlabInputError([f"spark.master {master!r}: no master answers at {', '.join(tried)} within {timeout:g} s; "
                            "is the Spark master running and reachable from here?"], what="Spark engine")  # fmt: skip


def _drop_view(session: Any, name: str) -> None:
    try:
        session.catalog.dropTempView(name)
    except Exception:  # the JVM may be gone at interpreter exit; a temp view dies with it anyway
        pass


class SparkSource(Source):
    """A Spark DataFrame of the log, registered as a temporary view of its session.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        The transaction log (``customer_id``, ``date``, ``amount`` [, segment columns]).
    """

    dialect = SPARK

    def __init__(self, frame: Any):
        self.spark_frame = frame
        self.session = frame.sparkSession
        self.table = f"clvlab_tx_{uuid.uuid4().hex[:12]}"  # a view per source: queries never collide
        frame.createOrReplaceTempView(self.table)
        weakref.finalize(self, _drop_view, self.session, self.table)

    @classmethod
    def open(cls, transactions: Any) -> SparkSource:
        """A pyspark DataFrame as it is; a pandas table or a Parquet path read on :func:`spark_session`."""
        if is_spark_frame(transactions):
            return cls(transactions)
        if isinstance(transactions, pd.DataFrame):
            pdf = transactions  # Arrow maps categories to dictionaries Spark cannot read back: plain values
            categorical = [c for c in pdf.columns if isinstance(pdf[c].dtype, pd.CategoricalDtype)]
            if categorical:
                pdf = pdf.assign(**{c: pdf[c].astype(object).where(pdf[c].notna(), None) for c in categorical})
            return cls(spark_session().createDataFrame(pdf))
        if isinstance(transactions, (str, os.PathLike)):
            path = str(transactions)
            remote = "://" in path  # s3a://, abfss://, hdfs://, ...: Spark's file systems, not checked here
            pattern = path if remote else parquet_files(path)
            if pattern is None and not Path(path).exists() and not is_glob(path):
                raise ClvlabInputError([f"no such Parquet file or folder: {path}"], what="transactions")
            if pattern is None:
                raise ClvlabInputError(
                    [
                        f"{path}: engine='spark' reads Parquet (a file, a folder of part files or a glob); read other "
                        "formats with spark.read and pass the DataFrame"
                    ],
                    what="transactions",
                )
            reader = spark_session().read
            if not remote:  # the footers checked as DuckDB's are: the same parts, columns and types
                check_parquet_input(path, engine="spark")
                reader = reader.option("pathGlobFilter", "*.parquet") if Path(path).is_dir() else reader
            try:
                frame = reader.parquet(path)
                frame.schema  # noqa: B018  (reads the footers: a type Spark cannot read fails here)
            except Exception as exc:  # a remote path: its footers were not read here
                if "PARQUET_TYPE_ILLEGAL" in str(exc) and "NANOS" in str(exc):
                    raise ClvlabInputError(
                        [f"{path}: nanosecond timestamps, which Spark cannot read; {NANOS_FIX}"],
                        what="transactions",
                    ) from None
                raise
            return cls(frame)
        raise ClvlabInputError(
            [
                f"transactions of type {type(transactions).__name__}: engine='spark' expects a pyspark DataFrame, "
                "a pandas DataFrame or a Parquet path"
            ],
            what="transactions",
        )

    @property
    def columns(self) -> list[str]:
        return list(self.spark_frame.columns)

    @property
    def types(self) -> dict[str, str]:
        return {c: t.upper() for c, t in self.spark_frame.dtypes}

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.session.sql(sql).collect()]

    def _fetch(self, sql: str) -> pd.DataFrame:
        return self.session.sql(sql).toPandas()
