"""Self-check of the SQL side's window bounds against the worked example of spec 5.6 (and 5.2, clarification 18).

    python bench/check_sql_windows.py

Evaluates the bound expressions of :class:`cohorts.Clock` in DuckDB and compares them with the instants the spec's
table states for ``now = 2025-03-15 14:30:00`` UTC, then checks wall-clock arithmetic across a DST change.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohorts import Clock  # noqa: E402


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def main() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def value(expr: str) -> datetime:
        return con.execute(f"SELECT {expr}").fetchone()[0].astimezone(UTC)

    clock = Clock(utc(2025, 3, 15, 14, 30), "UTC")
    end_today = utc(2025, 3, 15, 23, 59, 59, 999999)
    checks = {
        "performed_event 30 day": (clock.wd(30, "day"), (utc(2025, 2, 13), end_today)),
        "performed_event 24 hour": (clock.wd(24, "hour"), (utc(2025, 3, 14, 14), end_today)),
        "multiple 30 day (exclusive)": (clock.we(30, "day"), (utc(2025, 2, 13, 14, 30), utc(2025, 3, 15, 14, 30, 5))),
        "stopped seq 7 day": (clock.wd(7, "day"), (utc(2025, 3, 8), end_today)),
        "restarted gap end": ((clock.end_of_local_day(clock.back(7, "day")),) * 2,
                              (utc(2025, 3, 8, 23, 59, 59, 999999),) * 2),
    }
    # clarification 18: one day back across the end of summer time is the same local time the day before
    berlin = Clock(utc(2026, 10, 25, 14, 30), "Europe/Berlin")  # 15:30 CET, the day summer time ended
    checks["Berlin: now - 1 day (wall clock)"] = ((berlin.instant(berlin.back(1, "day")),) * 2,
                                                  (utc(2026, 10, 24, 13, 30),) * 2)
    checks["Berlin: now - 24 hour (wall clock)"] = ((berlin.instant(berlin.back(24, "hour")),) * 2,
                                                    (utc(2026, 10, 24, 13, 30),) * 2)
    checks["Berlin: Wd(1 day)"] = (berlin.wd(1, "day"), (utc(2026, 10, 23, 22), utc(2026, 10, 25, 22, 59, 59, 999999)))
    failures = 0
    for name, ((low, high), expected) in checks.items():
        got = (value(low), value(high))
        ok = got == expected
        failures += not ok
        print(f"{'ok ' if ok else 'BAD'} {name}: {got[0].isoformat()} .. {got[1].isoformat()}"
              + ("" if ok else f"  expected {expected[0].isoformat()} .. {expected[1].isoformat()}"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
