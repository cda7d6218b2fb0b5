"""Benchmark: time and peak memory of judging stored histories of 10^4 .. 10^6 ops (10^7 with --max-ops 10000000).

Why a subprocess per size and per step: peak memory (ru_maxrss) only grows in
a process, so each size is generated in one child and judged in a fresh one,
the way `ledgerchaos check RUN_DIR` would judge it. Histories are synthetic with
the shape of a real run (harness.checkers.synthetic: hot keys, retries,
timeouts, duplicates, conflicts, invalid bodies, dead letters, one fault
window). Figures printed per size: load time, check time, microseconds per op,
peak RSS. Goals: 10^6 ops checked in <= 6 s, 10^7 in <= 60 s within 8 GB, cost
linear in ops.

    python benchmarks/bench_checkers.py                  # 10^4, 10^5, 10^6
    python benchmarks/bench_checkers.py --max-ops 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
OPS_LIMIT = 10_000_000
STEP_TIMEOUT_S = 900
TMP_ROOT = Path(os.environ.get("LEDGERCHAOS_BENCH_TMP", "/tmp/lc-checkers"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def generate(ops: int, seed: int, run_dir: Path) -> dict:
    from harness.checkers.synthetic import synthetic_history
    from harness.history.store import save_history

    t0 = time.perf_counter()
    history = synthetic_history(ops, seed)
    made_s = time.perf_counter() - t0
    save_history(run_dir, history)
    return {
        "ops": len(history.ops),
        "generate_s": made_s,
        "save_s": time.perf_counter() - t0 - made_s,
        "journal_rows": len(history.observation.journal),
        "generate_rss_mb": _peak_rss_mb(),
    }


def measure(run_dir: Path) -> dict:
    from harness.checkers import CHECKER_NAMES, CheckConfig
    from harness.checkers.facts import Facts
    from harness.checkers.suite import run_checker
    from harness.history.store import load_history

    t0 = time.perf_counter()
    history = load_history(run_dir)
    load_s = time.perf_counter() - t0
    rss_loaded_mb = _peak_rss_mb()
    # What check_all does, one checker at a time so that each one's share is visible
    # (the shared facts are charged to the first checker that needs them).
    config = CheckConfig()
    facts = Facts(history)
    verdicts, per_checker_s = [], {}
    t1 = time.perf_counter()
    for name in CHECKER_NAMES:
        t = time.perf_counter()
        verdicts.append(run_checker(name, history, config, facts))
        per_checker_s[name] = time.perf_counter() - t
    check_s = time.perf_counter() - t1
    return {
        "ops": len(history.ops),
        "load_s": load_s,
        "check_s": check_s,
        "rss_after_load_mb": rss_loaded_mb,
        "rss_peak_mb": _peak_rss_mb(),
        "verdicts": {v.name: v.validity.value for v in verdicts},
        "per_checker_s": per_checker_s,
    }


def _child(args: list) -> dict:
    command = [sys.executable, __file__] + args
    done = subprocess.run(command, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-ops", type=int, default=1_000_000, help="largest size (default 10^6; 10^7 allowed)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated run folders")
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        print(json.dumps(generate(args.generate, args.seed, Path(args.dir))))
        return 0
    if args.measure:
        print(json.dumps(measure(Path(args.dir))))
        return 0
    if not 10_000 <= args.max_ops <= OPS_LIMIT:
        parser.error(f"--max-ops must be in [10000, {OPS_LIMIT}], got {args.max_ops}")
    TMP_ROOT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-checkers-", dir=TMP_ROOT))
    rows = []
    print(
        f"{'ops':>10} {'journal':>9} {'load_s':>7} {'check_s':>8} {'us/op':>6} {'rss_load_MB':>11} "
        f"{'rss_peak_MB':>11}  verdicts"
    )
    try:
        for size in (s for s in SIZES if s <= args.max_ops):
            run_dir = root / f"ops-{size}"
            made = _child(["--generate", str(size), "--seed", str(args.seed), "--dir", str(run_dir)])
            got = _child(["--measure", "--dir", str(run_dir)])
            bad = {k: v for k, v in got["verdicts"].items() if v != "valid"}
            row = {**made, **got, "us_per_op": got["check_s"] / got["ops"] * 1e6}
            rows.append(row)
            print(
                f"{got['ops']:>10} {made['journal_rows']:>9} {got['load_s']:>7.2f} {got['check_s']:>8.2f} "
                f"{row['us_per_op']:>6.2f} {got['rss_after_load_mb']:>11.0f} {got['rss_peak_mb']:>11.0f}  "
                f"{'all valid' if not bad else bad}",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if rows:
        slowest = sorted(rows[-1]["per_checker_s"].items(), key=lambda kv: -kv[1])[:4]
        print(f"slowest at {rows[-1]['ops']} ops: " + ", ".join(f"{k} {v:.2f} s" for k, v in slowest))
    for before, after in zip(rows, rows[1:]):
        print(
            f"check time x{after['check_s'] / before['check_s']:.1f} for x{after['ops'] / before['ops']:.0f} ops "
            f"({before['ops']} -> {after['ops']}; equal factors = linear)"
        )
    for row in rows:
        if 900_000 <= row["ops"] <= 1_100_000:
            print(f"goal 10^6 ops <= 6 s: {row['check_s']:.2f} s -> {'met' if row['check_s'] <= 6 else 'MISSED'}")
        if row["ops"] >= 9_000_000:
            ok = row["check_s"] <= 60 and row["rss_peak_mb"] <= 8192
            print(
                f"goal 10^7 ops <= 60 s within 8 GB: {row['check_s']:.1f} s, {row['rss_peak_mb']:.0f} MB -> "
                f"{'met' if ok else 'MISSED'}"
            )
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (figures are wall-clock)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
