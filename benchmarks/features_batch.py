"""Training at scale: build_features over a synthetic book's whole grid, wall time and peak memory as the book grows.

Run:  python benchmarks/features_batch.py [--accounts 100000,200000] [--data /tmp/riskscore-book] [--jobs 2]

The books are those of ``benchmarks/batch.py`` (make_portfolio in blocks of
100,000 accounts x 24 months, parquet folders, generated once per --data
folder). A default RiskModel trained on the bundled sample supplies the
FeatureBuilder. ``riskscore features`` writes the features and 90-day labels of
every account current at each month start from 2023-02-01 to 2024-12-01, in
chunks of --chunk-size accounts, in its own process; reported per book size:
wall time, observations written, and the peak resident memory of that process,
of its largest worker and of all of them together (psutil, every 50 ms). Flat
memory as the book grows is the point: the grid is found chunk by chunk and
the book is never read whole.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", default="100000,200000")
    parser.add_argument("--data", type=Path, default=Path("/tmp/riskscore-book"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from _timing import machine, sample_model
    from batch import _generate, _run_measured

    print(machine())
    model = sample_model()
    bundle = args.data / "bundle"
    model.save(bundle, overwrite=True)
    for n in (int(a) for a in args.accounts.split(",")):
        folder = args.data / f"{n}"
        _generate(folder, n)
        out = args.data / f"features-{n}"
        shutil.rmtree(out, ignore_errors=True)
        command = [
            sys.executable, "-m", "riskscore", "features", "--model", str(bundle), "--data", str(folder),
            "--start", "2023-02-01", "--end", "2024-12-01", "--out", str(out),
            "--chunk-size", str(args.chunk_size), "--jobs", str(args.jobs),
        ]  # fmt: skip
        seconds, peaks = _run_measured(command)
        done = json.loads((out / "_SUCCESS").read_text())
        rows = sum(int(v["rows"]) for v in json.loads((out / "_manifest.json").read_text())["done"].values())
        size = sum(p.stat().st_size for p in out.glob("part-*.parquet")) / 2**20
        print(
            f"build_features {n:,} accounts x 24 months: {rows:,} observations ({done['accounts']:,} accounts, "
            f"{done['errors']} invalid) in {seconds:.0f} s, {rows / seconds:,.0f} observations/s, {size:,.0f} MiB of "
            f"parquet; peak RSS: main {peaks['main']:,.0f} MiB, largest worker {peaks['worker']:,.0f} MiB, all "
            f"{peaks['total']:,.0f} MiB; chunk size {args.chunk_size:,}, {args.jobs} workers",
            flush=True,
        )


if __name__ == "__main__":
    main()
