"""load_transactions: validation rules (one test each + all at once), formats, aggregation, privacy."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvlab.data import ValidationReport, load_transactions, pseudonymise_ids
from clvlab.errors import ClvlabInputError


def _good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cust": ["a", "a", "a", "b", "b", "c"],
            "when": ["2020-01-01 09:30", "2020-01-01 17:00", "2020-01-05", "2020-01-02", "2020-01-02", "2020-02-01"],
            "spend": [10.0, 5.0, 0.0, 7.5, 7.5, 3.0],
            "channel": ["search", "email", "search", "social", "social", "email"],
        }
    )


def _load(df, **kw):
    kw.setdefault("customer_col", "cust")
    kw.setdefault("date_col", "when")
    kw.setdefault("amount_col", "spend")
    return load_transactions(df, **kw)


def _problems(df, **kw) -> list[str]:
    with pytest.raises(ClvlabInputError) as exc:
        _load(df, **kw)
    return exc.value.problems


# --------------------------------------------------------------------------- happy path


def test_contract_dtypes_and_aggregation():
    out, rep = _load(_good(), segment_cols=["channel"])
    assert list(out.columns) == ["customer_id", "date", "amount", "channel"]
    assert out["customer_id"].map(type).eq(str).all()
    assert out["date"].dtype == "datetime64[ns]"
    assert (out["date"] == out["date"].dt.normalize()).all()
    assert out["amount"].dtype == "float64"
    # a: two rows on 2020-01-01 (times of day) summed; b: exact duplicate summed
    a1 = out[(out.customer_id == "a") & (out.date == "2020-01-01")]
    assert len(a1) == 1 and a1["amount"].iloc[0] == 15.0
    b = out[out.customer_id == "b"]
    assert len(b) == 1 and b["amount"].iloc[0] == 15.0
    assert len(out) == 4
    assert isinstance(rep, ValidationReport)
    assert rep.n_input_rows == 6
    assert rep.n_exact_duplicates == 1
    assert rep.n_same_day_merged == 2
    assert rep.n_output_rows == 4
    assert rep.n_customers == 3
    assert rep.date_min == pd.Timestamp("2020-01-01") and rep.date_max == pd.Timestamp("2020-02-01")
    assert rep.n_zero_amount == 1
    assert rep.segment_cols == ("channel",)
    assert not rep.pseudonymised


def test_segment_is_value_at_first_purchase_and_changes_counted():
    out, rep = _load(_good(), segment_cols=["channel"])
    # a's first purchase (09:30) was "search"; the 17:00 row said "email"
    assert set(out.loc[out.customer_id == "a", "channel"]) == {"search"}
    assert rep.n_segment_changed == {"channel": 1}


def test_first_purchase_segment_uses_time_not_row_order():
    df = _good().iloc[[1, 0, 2]]  # the 17:00 "email" row now comes first in the input
    out, _ = _load(df, segment_cols=["channel"])
    assert set(out["channel"]) == {"search"}


def test_no_aggregation_keeps_every_row():
    out, rep = _load(_good(), aggregate_same_day=False)
    assert len(out) == 6 and rep.n_same_day_merged == 0 and rep.n_exact_duplicates == 1
    assert out["amount"].sum() == _good()["spend"].sum()
    assert (out["date"] == out["date"].dt.normalize()).all()


def test_spend_is_conserved_by_aggregation():
    out, _ = _load(_good())
    assert out["amount"].sum() == pytest.approx(_good()["spend"].sum())


def test_report_display():
    _, rep = _load(_good(), segment_cols=["channel"])
    frame = rep.to_frame()
    assert list(frame.columns) == ["item", "value"]
    assert dict(zip(frame["item"], frame["value"]))["n_exact_duplicates"] == 1
    text = str(rep)
    assert "n_same_day_merged" in text and "2020-02-01" in text


def test_csv_input(tmp_path):
    path = tmp_path / "tx.csv"
    _good().to_csv(path, index=False)
    out, rep = _load(path, segment_cols=["channel"])
    expected, _ = _load(_good(), segment_cols=["channel"])
    pd.testing.assert_frame_equal(out, expected)
    assert rep.source == str(path)


def test_csv_keeps_leading_zeros_in_ids(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount\n00042,2020-01-01,1.5\n007,2020-01-02,2\n")
    out, _ = load_transactions(path)
    assert set(out["customer_id"]) == {"00042", "007"}


def test_parquet_input(tmp_path):
    path = tmp_path / "tx.parquet"
    df = _good()
    df["when"] = pd.to_datetime(df["when"], format="mixed")
    df.to_parquet(path)
    out, _ = _load(path, segment_cols=["channel"])
    expected, _ = _load(_good(), segment_cols=["channel"])
    pd.testing.assert_frame_equal(out, expected)


def test_integer_ids_and_date_format():
    df = pd.DataFrame({"customer_id": [1, 2, 2], "date": [19970101, 19970102, 19970102], "amount": [1, 2, 3]})
    out, rep = load_transactions(df, date_format="%Y%m%d")
    assert list(out["customer_id"]) == ["1", "2"]
    assert list(out["date"]) == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-01-02")]
    assert list(out["amount"]) == [1.0, 5.0] and rep.n_same_day_merged == 1


def test_unknown_suffix_is_rejected(tmp_path):
    path = tmp_path / "tx.xlsx"
    path.write_text("x")
    with pytest.raises(ClvlabInputError, match="suffix"):
        load_transactions(path)


# --------------------------------------------------------------------------- one test per rule


def test_missing_columns_named_with_columns_present():
    probs = _problems(_good().drop(columns=["spend"]), segment_cols=["region"])
    assert len(probs) == 2  # the problem + the row-numbering note
    assert "'spend'" in probs[0] and "'region'" in probs[0]
    assert "columns present" in probs[0] and "'when'" in probs[0]


def test_empty_column():
    df = _good()
    df["spend"] = None
    probs = _problems(df)
    assert any("'spend' is empty" in p for p in probs)


def test_unparseable_dates_with_row_numbers_dataframe():
    df = _good()
    df.index = [10, 11, 12, 13, 14, 15]
    df.loc[12, "when"] = "2020-13-45"
    df.loc[14, "when"] = "yesterday"
    probs = _problems(df)
    msg = next(p for p in probs if "unparseable" in p)
    assert "2 unparseable" in msg and "index 12" in msg and "index 14" in msg and "'yesterday'" in msg
    assert "index label" in probs[-1]


def test_unparseable_dates_with_row_numbers_csv(tmp_path):
    df = _good()
    df.loc[2, "when"] = "not a date"
    path = tmp_path / "tx.csv"
    df.to_csv(path, index=False)
    with pytest.raises(ClvlabInputError) as exc:
        _load(path)
    msg = next(p for p in exc.value.problems if "unparseable" in p)
    assert "data row 3" in msg  # third data row, header excluded
    assert "header excluded" in str(exc.value)


def test_date_format_is_enforced():
    df = _good()
    probs = _problems(df, date_format="%d/%m/%Y")
    assert any("6 unparseable" in p and "'%d/%m/%Y'" in p for p in probs)


def test_missing_dates():
    df = _good()
    df.loc[1, "when"] = None
    assert any("1 missing date" in p and "index 1" in p for p in _problems(df))


def test_nan_amounts():
    df = _good()
    df.loc[3, "spend"] = float("nan")
    assert any("'spend'" in p and "missing" in p and "index 3" in p for p in _problems(df))


def test_negative_amounts():
    df = _good()
    df.loc[4, "spend"] = -2.0
    assert any("negative" in p and "index 4" in p and ">= 0" in p for p in _problems(df))


def test_non_numeric_amounts(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount\nx,2020-01-01,12.5\nx,2020-01-02,$3\ny,2020-01-03,abc\n")
    with pytest.raises(ClvlabInputError) as exc:
        load_transactions(path)
    msg = next(p for p in exc.value.problems if "non-numeric" in p)
    assert "2 non-numeric" in msg and "data row 2 ('$3')" in msg and "data row 3 ('abc')" in msg


def test_infinite_amounts():
    df = _good()
    df.loc[0, "spend"] = float("inf")
    assert any("infinite" in p for p in _problems(df))


@pytest.mark.parametrize("bad", [None, float("nan"), "", "   "])
def test_missing_customer_ids(bad):
    df = _good()
    df["cust"] = df["cust"].astype(object)
    df.loc[5, "cust"] = bad
    assert any("'cust'" in p and "missing/empty id" in p and "index 5" in p for p in _problems(df))


def test_missing_segment_values():
    df = _good()
    df.loc[2, "channel"] = None
    probs = _problems(df, segment_cols=["channel"])
    assert any("'channel' (segment)" in p and "index 2" in p for p in probs)


def test_empty_dataframe():
    df = _good().iloc[:0]
    assert any("no data rows" in p for p in _problems(df))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ClvlabInputError, match="empty"):
        load_transactions(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("customer_id,date,amount\n")
    with pytest.raises(ClvlabInputError, match="no data rows"):
        load_transactions(path)


def test_missing_file(tmp_path):
    with pytest.raises(ClvlabInputError, match="not found"):
        load_transactions(tmp_path / "nope.csv")


def test_all_problems_listed_at_once():
    df = pd.DataFrame(
        {
            "cust": ["a", None, "c", "d"],
            "when": ["2020-01-01", "bad", "2020-01-03", "2020-01-04"],
            "spend": [1.0, 2.0, -1.0, "x"],
            "channel": ["s", "s", None, "e"],
        }
    )
    with pytest.raises(ClvlabInputError) as exc:
        _load(df, segment_cols=["channel", "region"])
    probs = exc.value.problems
    joined = "\n".join(probs)
    for needle in [
        "missing column(s) ['region']",
        "missing/empty id",
        "unparseable",
        "negative",
        "non-numeric",
        "'channel' (segment)",
    ]:
        assert needle in joined, needle
    assert len(probs) == 7  # six problems + numbering note
    assert "(7 problem(s))" in str(exc.value)


def test_role_clash_is_an_argument_error():
    with pytest.raises(ClvlabInputError, match="more than one role"):
        load_transactions(_good(), customer_col="cust", date_col="when", amount_col="cust")


# --------------------------------------------------------------------------- privacy


def test_pseudonymise_is_deterministic_and_salted():
    ids = pd.Series(["a", "b", "a"])
    h1 = pseudonymise_ids(ids, "s1")
    assert h1.iloc[0] == h1.iloc[2] != h1.iloc[1]
    assert h1.str.fullmatch(r"[0-9a-f]{16}").all()
    pd.testing.assert_series_equal(h1, pseudonymise_ids(ids, "s1"))
    assert not set(h1) & set(pseudonymise_ids(ids, "s2"))


def test_pseudonymise_ids_matches_hmac_sha256():
    import hashlib
    import hmac

    expected = hmac.new(b"pepper", b"cust-1", hashlib.sha256).hexdigest()[:16]
    assert pseudonymise_ids(pd.Series(["cust-1"]), "pepper").iloc[0] == expected


def test_load_with_pseudonymise_hides_ids_and_salt(tmp_path):
    salt = "s3cr3t-salt-value"
    out, rep = _load(_good(), pseudonymise=True, salt=salt, segment_cols=["channel"])
    plain, _ = _load(_good(), segment_cols=["channel"])
    assert rep.pseudonymised
    assert not set(out["customer_id"]) & set(plain["customer_id"])
    assert out["customer_id"].nunique() == 3
    assert sorted(out["amount"]) == sorted(plain["amount"])
    # the salt is nowhere in the output or the report
    path = tmp_path / "out.csv"
    out.to_csv(path, index=False)
    assert salt not in path.read_text()
    assert salt not in str(rep) and salt not in repr(rep) and salt not in rep.to_frame().to_string()
    again, _ = _load(_good(), pseudonymise=True, salt=salt, segment_cols=["channel"])
    pd.testing.assert_frame_equal(out, again)


def test_salt_from_environment(monkeypatch):
    monkeypatch.setenv("CLVLAB_SALT", "env-salt")
    out_env, _ = _load(_good(), pseudonymise=True)
    out_arg, _ = _load(_good(), pseudonymise=True, salt="env-salt")
    pd.testing.assert_frame_equal(out_env, out_arg)


def test_missing_salt_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CLVLAB_SALT", raising=False)
    with pytest.raises(ClvlabInputError, match="CLVLAB_SALT"):
        _load(_good(), pseudonymise=True)


# --------------------------------------------------------------------------- more behaviour


def test_time_zones_keep_the_wall_clock_day():
    df = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "date": ["2020-01-01T23:30+01:00", "2020-01-02T23:30-05:00"],  # UTC would shift b to Jan 3
            "amount": [1.0, 2.0],
        }
    )
    out, _ = load_transactions(df)
    assert list(out["date"]) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")]


def test_sum_cols_are_validated_and_summed():
    df = _good().assign(qty=[1, 2, 3, 1, 1, 4])
    out, _ = _load(df, sum_cols=["qty"])
    assert list(out.columns) == ["customer_id", "date", "amount", "qty"]
    assert out["qty"].sum() == 12 and out["qty"].dtype == "int64"
    df.loc[0, "qty"] = -1
    assert any("'qty' (summed column)" in p and "negative" in p for p in _problems(df, sum_cols=["qty"]))


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["u", "v", "w"]),
            st.integers(0, 5),  # day
            st.integers(0, 23),  # hour
            st.floats(0, 1e4, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_aggregation_invariants(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "day", "hour", "amount"])
    df["date"] = (
        pd.Timestamp("2021-03-01") + pd.to_timedelta(df["day"], unit="D") + pd.to_timedelta(df["hour"], unit="h")
    )
    out, rep = load_transactions(df[["customer_id", "date", "amount"]])
    assert len(out) == df.groupby(["customer_id", "day"]).ngroups == rep.n_output_rows
    assert rep.n_input_rows - rep.n_same_day_merged == rep.n_output_rows
    assert rep.n_exact_duplicates <= rep.n_same_day_merged
    per_customer = out.groupby("customer_id")["amount"].sum()
    expected = df.groupby("customer_id")["amount"].sum()
    pd.testing.assert_series_equal(per_customer, expected, check_names=False, rtol=1e-12)
