"""Render benchmarks/RESULTS.md from the JSON results (``make bench`` runs it last).

    .venv/bin/python benchmarks/results_md.py

Reads benchmarks/results/scale.json (bench_scale.py), rfm.json (bench_rfm.py) and clv.json
(bench_clv.py); a missing file or run is said to be missing, never filled in. Every number in
the page comes from those files, so the page is regenerated, not edited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAGE = HERE / "RESULTS.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _s(run: dict[str, Any] | None, key: str = "wall_s", fmt: str = "{:,.1f} s") -> str:
    """A run's value, or why there is none."""
    if run is None:
        return "not run"
    if not run.get("finished", True):  # said once, in the run's wall-time column
        return run.get("reason", "did not finish") if key == "wall_s" else "—"
    value = run.get(key)
    return fmt.format(value) if value is not None else "—"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str = "ess_per_s") -> str:
    if not (a and b and a.get("finished") and b.get("finished") and a.get(key) and b.get(key)):
        return "—"
    return f"{a[key] / b[key]:,.1f}x"


def scale_section(scale: dict[str, Any] | None) -> list[str]:
    lines = ["## Purchase and spend models at 10k, 100k and 1M customers (20 segments)", ""]
    if not scale:
        return lines + ["Not measured yet: run `benchmarks/bench_scale.py` (part of `make bench`).", ""]
    st, env = scale["settings"], scale["environment"]
    lines += [
        f"Measured in one session, {env['cpus']} CPUs ({env['machine']}, Python {env['python']}), load average "
        f"{env.get('loadavg_1min_before', float('nan')):.1f} at the start; NUTS {st['chains']} x {st['draws']} "
        f"(warm-up: nutpie's 400 for clvlab, 1000 for pymc-marketing); a baseline run is stopped after "
        f"{st['budget_s']:.0f} s and reported as such. ESS/s: smallest bulk ESS of (r, alpha, a, b) over the "
        "whole wall time, compilation included (Gamma-Gamma: of p, q, gamma). Peak RSS is the measuring "
        "process's.",
        "",
        "| customers | clvlab partial NUTS | ESS/s | patterns | clvlab pooled NUTS | ESS/s | pymc-marketing "
        "nutpie (pooled) | ESS/s | ESS/s ratio (pooled) | clvlab MAP (partial) | pymc-marketing MAP | "
        "lifetimes MLE | Gamma-Gamma partial NUTS | peak RSS (partial NUTS) |",
        "|" + "---|" * 14,
    ]
    for n, row in sorted(scale["sizes"].items(), key=lambda kv: int(kv[0])):
        part, pooled, pm = (
            row.get("clvlab_nuts_partial"),
            row.get("clvlab_nuts_pooled"),
            row.get("pymc_marketing_nutpie"),
        )
        lines.append("| " + " | ".join([
            f"{int(n):,}", _s(part), _s(part, "ess_per_s", "{:,.1f}"), _s(part, "n_patterns", "{:,}"),
            _s(pooled), _s(pooled, "ess_per_s", "{:,.1f}"), _s(pm), _s(pm, "ess_per_s", "{:,.2f}"),
            _ratio(pooled, pm), _s(row.get("clvlab_map_partial")), _s(row.get("pymc_marketing_map")),
            _s(row.get("lifetimes_mle")), _s(row.get("clvlab_gg_partial")), _s(part, "peak_rss_gb", "{:.2f} GB"),
        ]) + " |")  # fmt: skip
    lines += _numpyro_lines(scale)
    lines += _spend_lines(scale)
    lines += _clv_lines(scale)
    part_1m = scale["sizes"].get("1000000", {}).get("clvlab_nuts_partial")
    if part_1m and part_1m.get("finished"):
        lines += ["", f"Target: 1M customers NUTS 4 x 1000 under 5 min on 2 cores: {part_1m['wall_s']:.0f} s "
                      f"({'met' if part_1m['wall_s'] < 300 else 'not met'})."]  # fmt: skip
    return lines + [""]


def _numpyro_lines(scale: dict[str, Any]) -> list[str]:
    """The partial BG/NBD on numpyro (JAX) next to nutpie, with the device named; GPU rows when measured."""
    rows = {n: r for n, r in scale["sizes"].items() if "clvlab_numpyro_partial" in r}
    if not rows:
        return [
            "",
            "numpyro rows: not measured in this run (`--tasks clvlab_numpyro_partial`; `--device gpu` on a GPU machine).",
        ]
    st = scale["settings"]
    lines = ["", f"The partial BG/NBD on numpyro (JAX), the same model and {st['chains']} x {st['draws']} after "
                 f"numpyro's 1000 warm-up draws; on CPU one JAX host device per chain (`XLA_FLAGS=--xla_force_host_platform_device_count`), "
                 f"so the chains run in parallel; a run is stopped after {st.get('numpyro_budget_s', 900):.0f} s.",
             "", "| customers | device | numpyro wall | ESS/s | leapfrog steps per draw | nutpie wall | ESS/s | "
                 "nutpie's ESS/s over numpyro's |", "|" + "---|" * 8]  # fmt: skip
    for n, row in sorted(rows.items(), key=lambda kv: int(kv[0])):
        r, nut = row["clvlab_numpyro_partial"], row.get("clvlab_nuts_partial")
        lines.append("| " + " | ".join([
            f"{int(n):,}", r.get("device") or st.get("device", "?"), _s(r), _s(r, "ess_per_s", "{:,.1f}"),
            _s(r, "steps_per_draw", "{:.1f}"), _s(nut), _s(nut, "ess_per_s", "{:,.1f}"), _ratio(nut, r),
        ]) + " |")  # fmt: skip
    if not any("gpu" in str(r["clvlab_numpyro_partial"].get("device", "")) for r in rows.values()):
        lines += [
            "",
            "GPU rows: no GPU machine was at hand for this run (`bench_scale.py --device gpu` on one adds them).",
        ]
    return lines


def _spend_lines(scale: dict[str, Any]) -> list[str]:
    """The Gamma-Gamma rows: geometry (leapfrog steps, what the centring pilot chose) next to the time."""
    rows = {n: r["clvlab_gg_partial"] for n, r in scale["sizes"].items() if "clvlab_gg_partial" in r}
    if not rows:
        return []
    lines = ["", "Gamma-Gamma partial pooling (the spend model, on the repeat customers; each repeater is its own "
                 "spend pattern). Centred: segments of 20 sampled centred per parameter, chosen by the pilot "
                 "(`models/centering.py`).", "",
             "| customers | repeaters | wall | ESS/s | leapfrog steps per draw | centred (p, q-1, mean spend) | "
             "mass matrix | max R-hat | divergences | pooled: wall | pooled: ESS/s |", "|" + "---|" * 11]  # fmt: skip
    for n, r in sorted(rows.items(), key=lambda kv: int(kv[0])):
        pooled = scale["sizes"][n].get("clvlab_gg_pooled")
        c = r.get("centered")
        centred = ", ".join(str(c.get(k, 0)) for k in ("p", "q_minus_1", "mean_spend")) if c is not None else "—"
        lines.append("| " + " | ".join([
            f"{int(n):,}", _s(r, "n_repeaters", "{:,}"), _s(r), _s(r, "ess_per_s", "{:,.1f}"),
            _s(r, "steps_per_draw", "{:.1f}"), centred if r.get("finished") else "—",
            _s(r, "nutpie_adaptation", "{}"), _s(r, "max_r_hat", "{:.3f}"), _s(r, "divergences", "{}"),
            _s(pooled), _s(pooled, "ess_per_s", "{:,.1f}"),
        ]) + " |")  # fmt: skip
    return lines


def _clv_lines(scale: dict[str, Any]) -> list[str]:
    """Posterior CLV at each size: clvlab partial and pooled, pymc-marketing on the same pooled draws."""
    keys = ("clvlab_clv_partial", "clvlab_clv_pooled", "pymc_marketing_clv")
    rows = {n: r for n, r in scale["sizes"].items() if any(k in r for k in keys)}
    if not rows:
        return ["", "Posterior CLV at each size: not measured in this run."]
    limit = scale["settings"].get("mm_limit_gb")
    lines = ["", "Posterior CLV of every customer (12 monthly periods, 1% discount, every posterior draw, "
                 "per-customer mean, sd, HDI and P(CLV > $100)) on the posteriors of the fits above; pymc-marketing's "
                 "`expected_customer_lifetime_value` gets clvlab's pooled BG/NBD and Gamma-Gamma draws (it has no "
                 f"segments), its address space capped at {limit:g} GB. Mean CLV: the mean over customers of "
                 "each one's posterior mean, the check that both evaluate the same thing.", "",
             "| customers | draws | clvlab partial (20 segments) | peak RSS | clvlab pooled | peak RSS | "
             "pymc-marketing (pooled) | peak RSS | speed ratio (pooled) | mean CLV: clvlab / pymc-marketing |",
             "|" + "---|" * 10]  # fmt: skip
    for n, row in sorted(rows.items(), key=lambda kv: int(kv[0])):
        part, pooled, pm = (row.get(k) for k in keys)
        agree = "—"
        if pooled and pm and pooled.get("finished") and pm.get("finished"):
            agree = f"${pooled['mean_clv_per_customer']:,.2f} / ${pm['mean_clv_per_customer']:,.2f}"
        draws = next((r["n_draws"] for r in (part, pooled, pm) if r and r.get("n_draws")), None)
        lines.append("| " + " | ".join([
            f"{int(n):,}", f"{draws:,}" if draws else "—", _s(part), _s(part, "peak_rss_gb", "{:.2f} GB"),
            _s(pooled), _s(pooled, "peak_rss_gb", "{:.2f} GB"), _s(pm), _s(pm, "peak_rss_gb", "{:.2f} GB"),
            _ratio(pm, pooled, "wall_s"), agree,
        ]) + " |")  # fmt: skip
    return lines


def features_section(rfm: dict[str, Any] | None) -> list[str]:
    lines = ["## The feature step: 20M transactions, DuckDB and Spark", ""]
    if not rfm:
        return lines + ["Not measured yet: run `benchmarks/bench_rfm.py`.", ""]
    d = rfm["data"]
    lines += [f"{d['rows']:,} transactions of {d['customers']:,} customers (`{d['path']}`, "
              f"{d['parquet_bytes'] / 1e6:.0f} MB), DuckDB with {rfm['settings']['duckdb_threads']} threads and "
              f"{rfm['settings']['duckdb_memory_limit']}.", "",
              "| task | wall | CPU | peak RSS | customers |", "|---|---|---|---|---|"]  # fmt: skip
    for r in rfm["large"]:
        lines.append(f"| DuckDB `{r['task']}` | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | "
                     f"{r['peak_rss_bytes'] / 1e9:.2f} GB | {r['customers']:,} |")  # fmt: skip
    e = rfm.get("engines")
    if e:
        lines += ["", f"`calibration_holdout` by channel on the same log as {e['part_files']} Parquet part files, "
                      "each engine in a fresh process:", "", "| engine | wall | session start | peak RSS |",
                  "|---|---|---|---|"]  # fmt: skip
        for name, r in e["runs"].items():
            start = f"{r['session_start_s']:.0f} s" if r["session_start_s"] else "—"
            lines.append(f"| {name} | {r['wall_s']:.1f} s | {start} | {r['peak_rss_bytes'] / 1e9:.2f} GB |")
        lines += ["", f"Spark in local mode (`local[2]`, {', '.join(f'{k}={v}' for k, v in e['spark_conf'].items())}) takes {e['spark_over_duckdb']:.1f}x "
                      f"DuckDB's time on one machine; the two per-customer tables are "
                      f"{'identical to the bit' if e['identical'] else 'NOT identical'}. Spark is for logs that do "
                      "not fit one machine; on one machine DuckDB is the engine."]  # fmt: skip
    else:
        lines += ["", "Spark: not measured in this run."]
    v = rfm.get("versus_lifetimes")
    if v:
        lines += ["", f"Against lifetimes' `summary_data_from_transaction_data` on {v['transactions']:,} customer-days "
                      f"(best of 3): {v['lifetimes_s']:.2f} s against {v['clvlab_s']:.2f} s ({v['speedup']:.1f}x), "
                      f"outputs agree: {v['outputs_agree']}."]  # fmt: skip
    return lines + [""]


def clv_section(clv: dict[str, Any] | None) -> list[str]:
    lines = ["## Posterior CLV", ""]
    if not clv:
        return lines + ["Not measured yet: run `benchmarks/bench_clv.py`.", ""]
    ours, pm = clv["clvlab"], clv.get("pymc_marketing", {})
    lines += [f"{clv['n_customers']:,} customers x {clv['n_draws']:,} draws, {clv['benchmark']}: clvlab "
              f"{ours['seconds']:.1f} s, peak RSS {ours['peak_rss_gb']:.2f} GB."]  # fmt: skip
    if pm:
        probe, big = pm.get("probe", {}), pm.get("largest_ok", {})
        lines += ["", f"pymc-marketing `expected_customer_lifetime_value` at {probe.get('n_customers', 0):,} "
                      f"customers: {probe.get('reason', 'finished') if not probe.get('ok') else 'finished'} "
                      f"(address space capped at {pm.get('address_space_limit_gb')} GB); the largest size it "
                      f"finished, {big.get('n_customers', 0):,} customers, took {big.get('seconds', float('nan')):.1f} s "
                      f"and {big.get('peak_rss_gb', float('nan')):.2f} GB, against clvlab's "
                      f"{pm.get('clvlab_pooled_same_size', {}).get('seconds', float('nan')):.1f} s on the same pooled "
                      f"problem ({pm.get('speedup', float('nan')):.1f}x)."]  # fmt: skip
    return lines + [""]


def render() -> str:
    lines = ["# Benchmark results", "",
             "Generated by `benchmarks/results_md.py` from `benchmarks/results/*.json` (`make bench`); do not edit. "
             "Timings vary about 2x between machines and with other load: compare ratios measured in one run.", ""]  # fmt: skip
    lines += scale_section(_load("scale"))
    lines += features_section(_load("rfm"))
    lines += clv_section(_load("clv"))
    return "\n".join(lines).rstrip() + "\n"


def write_results_md() -> Path:
    """Write RESULTS.md atomically; returns its path."""
    import sys

    sys.path.insert(0, str(HERE.parent / "src"))
    from clvlab.io import atomic_path

    with atomic_path(PAGE) as tmp:
        Path(tmp).write_text(render())
    return PAGE


if __name__ == "__main__":
    print(f"wrote {write_results_md()}")
