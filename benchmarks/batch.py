"""End-to-end batch scoring: score_batch over a synthetic book, wall time and peak memory.

Run:  python benchmarks/batch.py --accounts 1000000 [--data /tmp/book] [--jobs 2] [--policy cn-2026]

The book is make_portfolio in blocks of 100,000 accounts x 24 months (seeds 0,
1, ...; account ids offset by 1,000,000 per block), written as parquet folders
(one part per block and table, rows sorted by account). It is generated once
per --data folder and reused. A default RiskModel trained on the bundled
sample (with its FeatureBuilder) scores every account at 2024-12-01 with
score_batch at the default chunk size; explanations for the contact bands;
optionally outreach under a policy. The scoring runs as `riskscore score` in
its own process; reported: wall time, accounts/s, and the peak resident memory
of that process, of its largest worker and of all of them together (psutil,
polled every 50 ms).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = 100_000


def _generate(folder: Path, accounts: int) -> None:
    import riskscore as rs

    blocks = accounts // BLOCK
    done = folder / "_blocks.json"
    have = json.loads(done.read_text())["blocks"] if done.exists() else 0
    for b in range(have, blocks):
        start = time.perf_counter()
        events, _ = rs.datasets.make_portfolio(n_accounts=BLOCK, months=24, seed=b)
        for name, df in events.tables.items():
            part = df.assign(account_id=df["account_id"] + b * 1_000_000)
            if "customer_id" in part.columns:  # each block's customers are its own
                part["customer_id"] = part["customer_id"] + b * 1_000_000
            target = folder / f"{name}.parquet"
            target.mkdir(parents=True, exist_ok=True)
            part.to_parquet(target / f"part-{b:03d}.parquet", index=False, row_group_size=100_000)
        (folder / "_eventdata.json").write_text(json.dumps({"protected": list(events.protected)}))
        done.write_text(json.dumps({"blocks": b + 1}))
        print(f"  block {b + 1}/{blocks} written in {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/riskscore-book"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--policy", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from _timing import machine, sample_model

    print(machine())
    folder = args.data / f"{args.accounts}"
    _generate(folder, args.accounts)
    model = sample_model()
    bundle = args.data / "bundle"
    model.save(bundle, overwrite=True)
    out = args.data / f"scores-{args.accounts}"
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable, "-m", "riskscore", "score", "--model", str(bundle), "--data", str(folder),
        "--as-of", "2024-12-01", "--out", str(out), "--chunk-size", str(args.chunk_size), "--jobs", str(args.jobs),
    ]  # fmt: skip
    if args.policy:
        command += ["--policy", args.policy, "--capacity", "call=5000,sms=50000,app=50000,email=50000,human_review=500",
                    "--now", "2024-12-02T09:00-05:00"]  # fmt: skip
    seconds, peaks = _run_measured(command)
    print((out / "_SUCCESS").read_text())
    print(
        f"score_batch {args.accounts:,} accounts: {seconds:.0f} s, {args.accounts / seconds:,.0f} accounts/s; "
        f"peak RSS: main process {peaks['main']:,.0f} MiB, largest worker {peaks['worker']:,.0f} MiB, "
        f"all processes together {peaks['total']:,.0f} MiB; chunk size {args.chunk_size:,}, {args.jobs} workers"
        + (f", outreach under {args.policy}" if args.policy else "")
    )


def _run_measured(command: list[str]) -> tuple[float, dict[str, float]]:
    """Run ``command``; poll the resident memory of it and its children every 50 ms."""
    import subprocess

    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    main = psutil.Process(proc.pid)
    peaks = {"main": 0.0, "worker": 0.0, "total": 0.0}
    while proc.poll() is None:
        try:
            rss_main = main.memory_info().rss / 2**20
            workers = [c.memory_info().rss / 2**20 for c in main.children(recursive=True)]
        except psutil.Error:  # a process ended between listing and reading
            continue
        peaks["main"] = max(peaks["main"], rss_main)
        peaks["worker"] = max([peaks["worker"], *workers])
        peaks["total"] = max(peaks["total"], rss_main + sum(workers))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    output = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"scoring failed ({proc.returncode}): {output[-2000:]}")
    print(output.strip().splitlines()[-1])
    return seconds, peaks


if __name__ == "__main__":
    main()
