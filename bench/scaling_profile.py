"""Which functions make our engine grow faster than the data: one sampled CPU profile at each of two sizes.

    python bench/scaling_profile.py                      # M and L, the 12-cohort set (L data: ~13 min to generate)
    python bench/scaling_profile.py --sizes S M --top 15

Runs the ``engine`` worker of ``workers.py`` (``load_project`` + one ``evaluate_cohorts`` call, as ``run.py``
measures it) under ``perf record`` at each size, turns each function's samples into CPU seconds (samples /
sampling frequency, all threads) and prints, per function, its seconds at both sizes and its *excess over linear*:
its seconds at the large size minus its seconds at the small one times the ratio of the sizes' events (10 from M to
L). The functions at the top are where the issue's "no worse than linearly" is lost; the excess of all functions
adds up to the engine's own. Polars' shared library carries its symbol names, so its functions are named as in its
source. Needs Linux ``perf`` (Debian: ``apt-get install linux-perf``) and reads as root or with
``kernel.perf_event_paranoid`` <= 1. The table is appended to ``bench/RESULTS.md`` unless ``--no-record``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from cohorts import SETS  # noqa: E402
from run import SIZES, ensure_data, load_average, machine, record, write_set  # noqa: E402

_REPORT_LINE = re.compile(r"^\s*[\d.]+%\s+(\d+)\s+\[[.k]\]\s+(.*?)(?:\s+-\s+-)?\s*$")
"""``<overhead>% <samples> [.] <symbol>`` (user space; ``[k]``: kernel), with perf's empty IPC columns after it."""
_GENERICS = re.compile(r"(?<=[\w:])<[^<>]*>")
_MODULE_PATH = re.compile(r"\b[a-z_][a-z0-9_]*::(?=[\w<{])")


def short_name(symbol: str) -> str:
    """A Rust symbol without its generic arguments and module paths, which make Polars' names several lines long:
    ``<polars_compute::Map<K, V>>::get::<Q>`` -> ``<Map>::get``, ``<a::Table<u32> as b::IdxTable>::probe`` ->
    ``<Table as IdxTable>::probe``."""
    previous = None
    while previous != symbol:
        previous, symbol = symbol, _GENERICS.sub("", symbol)
    return _MODULE_PATH.sub("", symbol).replace("::::", "::").removesuffix("::")


def profile(size: str, cohorts: str, frequency: int, out_dir: Path) -> tuple[dict[str, float], float]:
    """CPU seconds per function (short name) of the engine worker at ``size``, and the worker's wall time."""
    data_dir = (BENCH / "data" / size).resolve()
    ensure_data(data_dir, size)
    subprocess.run(["cat", *map(str, (data_dir / "project_1").glob("*.parquet"))], stdout=subprocess.DEVNULL,
                   check=True)  # read once, so the profile is of the engine and not of the disk
    set_path = write_set(out_dir, f"{cohorts}_{size}", SETS[cohorts]())
    samples = out_dir / f"perf_{size}.data"
    worker = [sys.executable, str(BENCH / "workers.py"), "engine", "--set", str(set_path), "--data-dir",
              str(data_dir), "--out", str(out_dir / f"ours_{size}.parquet"), "--report",
              str(out_dir / f"ours_{size}.json")]
    print(f"--- {size}: perf record -F {frequency} the engine worker ...", flush=True)
    started = time.perf_counter()
    subprocess.run(["perf", "record", "-q", "-F", str(frequency), "-o", str(samples), "--", *worker], check=True)
    wall = time.perf_counter() - started
    report = subprocess.run(["perf", "report", "-i", str(samples), "--no-children", "--sort", "symbol", "-n",
                             "--stdio"], check=True, capture_output=True, text=True).stdout
    seconds: dict[str, float] = {}
    for line in report.splitlines():
        match = _REPORT_LINE.match(line)
        if match:
            name = short_name(match.group(2))
            seconds[name] = seconds.get(name, 0.0) + int(match.group(1)) / frequency
    if not seconds:
        raise SystemExit(f"perf report of {samples} holds no samples; is perf allowed to sample this process?")
    return seconds, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs=2, default=["M", "L"], choices=sorted(SIZES), metavar=("SMALL", "LARGE"))
    parser.add_argument("--cohorts", default="12", choices=sorted(SETS))
    parser.add_argument("--frequency", type=int, default=199, help="samples per second per thread (perf -F)")
    parser.add_argument("--top", type=int, default=25, help="functions listed, by excess over linear")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf not found: install Linux perf (Debian: apt-get install linux-perf)")
    small, large = args.sizes
    out_dir = BENCH / "data" / "scaling" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True)
    profiles = {size: profile(size, args.cohorts, args.frequency, out_dir) for size in (small, large)}
    events = {size: pq.ParquetFile(BENCH / "data" / size / "project_1" / "events.parquet").metadata.num_rows
              for size in (small, large)}
    factor = events[large] / events[small]
    (cpu_small, wall_small), (cpu_large, wall_large) = profiles[small], profiles[large]
    total_small, total_large = sum(cpu_small.values()), sum(cpu_large.values())
    rows = sorted(((cpu_large.get(name, 0.0) - factor * cpu_small.get(name, 0.0), name)
                   for name in cpu_small.keys() | cpu_large.keys()), reverse=True)
    lines = [f"{args.cohorts}-cohort set, engine worker (load_project + evaluate_cohorts) under perf record -F "
             f"{args.frequency}; events {events[small]:,} ({small}) -> {events[large]:,} ({large}) = x{factor:.1f}"]
    lines += machine()
    lines += [f"load average at start of the table {load_average()}",
              f"{small}: {total_small:.1f} s CPU sampled, worker wall {wall_small:.1f} s; {large}: {total_large:.1f} s "
              f"CPU sampled, worker wall {wall_large:.1f} s; CPU x{total_large / total_small:.1f}, wall "
              f"x{wall_large / wall_small:.1f}; excess over linear {total_large - factor * total_small:.1f} s CPU",
              "",
              f"{'excess s':>9} {small + ' s':>8} {large + ' s':>8} {'x':>6}  function"]
    for excess, name in rows[:args.top]:
        s, l = cpu_small.get(name, 0.0), cpu_large.get(name, 0.0)
        growth = f"{l / s:6.1f}" if s else "     -"
        lines.append(f"{excess:9.2f} {s:8.2f} {l:8.2f} {growth}  {name[:150]}")
    lines.append(f"(perf data and the workers' outputs in {out_dir.relative_to(BENCH.parent)})")
    print("\n".join(lines))
    if not args.no_record:
        record(lines, " ".join(["python bench/scaling_profile.py", *sys.argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
