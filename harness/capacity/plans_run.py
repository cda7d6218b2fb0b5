"""`ledgerchaos plan PLANS.yaml`: compare the plans, write the table, CSV, JSON and plots, name the cheapest.

Why apart from plans.py: this is the edge where files are read and written and
a person reads a table; compare_plans stays pure and testable without a disk.
Exit code: 0 when some plan meets the SLO, 1 when none does; a bad file raises
ScenarioError (exit 2, from the CLI).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from harness.capacity.plans import PlanComparison, compare_plans
from harness.capacity.plans_file import load_plans_file
from harness.errors import UsageError
from harness.load.codec import profile_to_dict

__all__ = ["run_plan_file", "write_outputs", "render_table"]

EXIT_SLO_MET = 0
EXIT_NO_PLAN_MEETS_SLO = 1


def run_plan_file(path: Path, out_dir: Path, out: TextIO | None = None) -> int:
    """Run every plan of a plans file and write the comparison into out_dir; return the exit code.

    out: where the table goes; None means sys.stdout at call time (not at import
    time, so that a redirected or captured stdout is honoured).
    """
    out = sys.stdout if out is None else out
    study = load_plans_file(Path(path))
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot create the output folder ({exc}); choose another") from None
    console = Console(file=out, width=140, highlight=False)
    console.print(
        f"plans [bold]{study.name}[/bold]: {len(study.plans)} plans × {study.replications} replications, "
        f"seed {study.seed}, load {profile_to_dict(study.profile)['kind']} over {study.profile.duration_s:g} s"
    )

    def progress(plan_name: str, replication: int) -> None:
        if replication == 0:
            console.print(f"  simulating {plan_name} ({study.replications} replications)")

    comparison = compare_plans(study, progress=progress)
    written = write_outputs(comparison, out_dir)
    console.print(render_table(comparison))
    if comparison.cheapest is None:
        console.print(f"[bold red]no plan meets the SLO[/bold red] in ≥ {study.slo.attainment_min:.0%} of replications")
    else:
        row = comparison.table().set_index("plan").loc[comparison.cheapest]
        console.print(
            f"cheapest plan meeting the SLO: [bold]{comparison.cheapest}[/bold] "
            f"({row['consumer_seconds_mean']:.0f} consumer-seconds)"
        )
    for p in written:
        console.print(f"wrote {p}")
    console.print(f"replay: ledgerchaos plan {path} --out {out_dir}  (seed {study.seed})")
    return EXIT_SLO_MET if comparison.cheapest is not None else EXIT_NO_PLAN_MEETS_SLO


def _ci(mean: float, half: float, fmt: str) -> str:
    if mean is None or not math.isfinite(mean):
        return "–"
    if half is None or not math.isfinite(half):
        return format(mean, fmt)
    return f"{format(mean, fmt)} ±{format(half, fmt)}"


def render_table(comparison: PlanComparison) -> Table:
    """The comparison as a Rich table: one row per plan, 95% CIs over replications."""
    table = Table(title=f"{comparison.study.name}: SLO attainment against cost (95% CI over "
                        f"{comparison.study.replications} replications)")  # fmt: skip
    for name in ("plan", "pool", "scaling", "SLO met", "consumer-s", "p99 ms", "shed %", "peak backlog", "util."):
        table.add_column(name, justify="left" if name in ("plan", "pool", "scaling") else "right", no_wrap=True)
    for _, r in comparison.table().iterrows():
        met = f"{r['slo_attainment']:.0%} [{r['slo_attainment_ci_low'] * 100:.0f}–{r['slo_attainment_ci_high'] * 100:.0f}]"
        style = "bold green" if r["cheapest"] else ("" if r["meets_slo"] else "dim")
        table.add_row(
            str(r["plan"]) + (" ★" if r["cheapest"] else ""),
            f"{r['consumers']} c · B{r['batch_size_max']} · P{r['partitions']}",
            str(r["scaling"]),
            met,
            _ci(r["consumer_seconds_mean"], r["consumer_seconds_ci_half"], ".0f"),
            _ci(r["latency_ms_p99_mean"], r["latency_ms_p99_ci_half"], ".0f"),
            _ci(r["shed_share_mean"] * 100, r["shed_share_ci_half"] * 100, ".2f"),
            _ci(r["backlog_events_peak_mean"], r["backlog_events_peak_ci_half"], ".0f"),
            f"{r['consumer_utilisation_mean']:.2f}",
            style=style,
        )
    return table


def write_outputs(comparison: PlanComparison, out_dir: Path) -> list:
    """plans.csv (one row per plan), replications.csv, plans.json, and the PNG plots; returns the paths."""
    from harness.report.plan_plots import plot_plan_comparison, plot_plan_timelines

    table = comparison.table()
    paths = [out_dir / "plans.csv", out_dir / "replications.csv", out_dir / "plans.json"]
    table.to_csv(paths[0], index=False)
    comparison.replications().to_csv(paths[1], index=False)
    study = comparison.study
    document = {
        "name": study.name,
        "seed": study.seed,
        "replications": study.replications,
        "load": profile_to_dict(study.profile),
        "faults": [f.describe() + f" at {f.start_s:g}s for {f.duration_s:g}s" for f in study.faults],
        "slo": dict(study.slo.__dict__),
        "cheapest": comparison.cheapest,
        "plans": [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")],
    }
    paths[2].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    paths.append(plot_plan_comparison(table, out_dir / "plans_cost.png", title=study.name,
                                      latency_ms_p99_max=study.slo.latency_ms_p99_max,
                                      attainment_min=study.slo.attainment_min))  # fmt: skip
    paths.append(plot_plan_timelines(comparison.timelines(), out_dir / "plans_timeline.png", title=study.name))
    return paths


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
