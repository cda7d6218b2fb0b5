"""Benchmark: how long the local stack takes to come up and go down, cold and warm.

Cold: the first start in a fresh Python process (imports, initdb of a new
cluster, binaries maybe not in the page cache). Warm: the following starts in
the same process. Goal (issue 2): cold stack up in at most 5 s.

    python benchmarks/bench_stack.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="stack starts to time (first one is cold)")
    args = parser.parse_args()
    began = time.perf_counter()
    from harness.stack import LocalStack, StackConfig  # counted in the cold figure

    import_s = time.perf_counter() - began
    ups, downs = [], []
    for _ in range(max(2, args.runs)):
        stack = LocalStack(StackConfig())
        t0 = time.perf_counter()
        with stack:
            ups.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
        downs.append(time.perf_counter() - t1)
    print(f"stack (redis + postgres initdb + toxiproxy), {len(ups)} starts")
    print(f"  import harness.stack      {import_s * 1000:8.1f} ms")
    print(f"  cold up (first start)     {ups[0]:8.3f} s   (goal <= 5 s)")
    print(
        f"  warm up (median of rest)  {statistics.median(ups[1:]):8.3f} s   min {min(ups[1:]):.3f} max {max(ups[1:]):.3f}"
    )
    print(f"  down (median)             {statistics.median(downs):8.3f} s")
    return 0 if ups[0] <= 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
