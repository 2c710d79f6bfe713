"""Prints what benchmarks/lockwait/sitecustomize.py timed: per thread group, the write
transactions, the time waited for the store's write lock and the time it was held; and how
busy the lock was from the first webhook stored to the last transaction.

    python benchmarks/lockwait/show.py /tmp/locks.json.PID"""

from __future__ import annotations

import json
import sys


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] * 1000


def main() -> None:
    times: dict[str, list[list[float]]] = json.load(open(sys.argv[1]))  # noqa: SIM115
    # Share of each second the lock was held, from the first webhook stored (a warm-up
    # webhook and the client's preparation may come first: the seconds show where the load is).
    rows = [row for group_rows in times.values() for row in group_rows]
    begin = min(end - held for _, held, end in rows)
    busy = [0.0] * (int(max(end for _, _, end in rows) - begin) + 1)
    for _, held, end in rows:
        start = end - held
        while held > 1e-9:  # split a hold across the seconds it spans
            second = int(start - begin)
            part = min(held, begin + second + 1 - start)
            busy[second] += part
            start, held = start + part, held - part
    print("write lock held, per second: " + " ".join(f"{100 * b:.0f}%" for b in busy))
    print(
        f"{'thread':14s} {'tx':>6s} {'waited s':>9s} {'p50 ms':>7s} {'held s':>7s} "
        f"{'p50 ms':>7s} {'p90 ms':>7s} {'max ms':>7s}"
    )
    for group, rows in sorted(times.items(), key=lambda kv: -sum(r[1] for r in kv[1])):
        waited = sorted(r[0] for r in rows)
        held = sorted(r[1] for r in rows)
        print(
            f"{group:14s} {len(rows):6d} {sum(waited):9.2f} {pct(waited, 0.5):7.2f} "
            f"{sum(held):7.2f} {pct(held, 0.5):7.2f} {pct(held, 0.9):7.2f} {held[-1] * 1000:7.1f}"
        )


if __name__ == "__main__":
    main()
