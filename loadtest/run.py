"""`make loadtest`: the seed's comparison of the issue paths, on locust (loadtest/locustfile.py).

    python -m loadtest.run [--url http://127.0.0.1:3000] [--scenarios baseline,v1,v1-async,v2,mixed,checkout]
                           [--users 64] [--seconds 15] [--stock 1000] [--workers 0|N|auto]

Each scenario runs headless for --seconds with --users simulated users (FastHttpUser, no wait) fired at a
start gun, on one process or, with --workers, a master and N workers (auto: one per core). Against a local
URL with nothing answering, the local stack is started first and stopped after. For every scenario, locust
writes its HTML report and CSV files into loadtest/results/, the locustfile its outcomes and audit; this
script then writes comparison.md / comparison.json (req/s, p50/p95/p99, outcomes, audit per scenario) and
three charts (docs/img/throughput.png, latency.png, timeline.png). It fails when any audit fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from couponcore.domain.issue_route import IssueRoute
from localdev.environment import use_local_defaults

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "loadtest" / "results"
CHARTS = ROOT / "docs" / "img"  # shown by docs/benchmarks.md
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
SCENARIOS = ("baseline", *(route.value for route in IssueRoute), "mixed", "checkout")
LABELS = {
    "baseline": "baseline: GET /health/live",
    "v1": "V1: MySQL row lock",
    "v1-async": "V1-async: Redis lock",
    "v2": "V2: Lua",
    "mixed": "mixed: V1 + V1-async + V2",
    "checkout": "checkout: orders redeem, race, retry and cancel",
}
ONE_PROCESS = {"checkout"}  # its rounds share one ledger (loadtest/checkout.py)


@dataclass
class Result:
    scenario: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    outcomes: dict[str, int]
    audit: str  # "passed", "failed: ...", or "n/a" (nothing sold)
    exit_code: int


def ensure_stack(url: str) -> subprocess.Popen[bytes] | None:
    try:
        if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
            return None
    except httpx.HTTPError:
        pass
    if "127.0.0.1" not in url and "localhost" not in url:
        raise SystemExit(f"{url} does not answer /health/live")
    print(f"[loadtest] starting the local stack on {url}", flush=True)
    port = url.rsplit(":", 1)[-1].strip("/")
    command = [sys.executable, "-m", "localdev.api_server", "--port", port]
    stack = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})  # noqa: S603
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stack.terminate()
    raise SystemExit("the local stack did not start")


def locust_commands(args: argparse.Namespace, scenario: str) -> tuple[list[str], list[list[str]]]:
    """The command of the run (the master when distributed) and the workers' commands."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    run = [
        *base,
        *("--headless", "--only-summary", "--host", args.url, "--scenario", scenario),
        *("-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s", "--stop-timeout", "5"),
        *("--stock", str(args.stock), "--identities", str(args.identities)),
        *("--csv", str(RESULTS / scenario), "--csv-full-history", "--html", str(RESULTS / f"{scenario}.html")),
        *("--summary", str(RESULTS / f"{scenario}.json")),
    ]
    if not args.workers or scenario in ONE_PROCESS:
        return run, []
    port = "5557"
    master = [*run, "--master", "--master-bind-port", port, "--expect-workers", str(args.workers)]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", port]
    return master, [worker] * args.workers


def run_scenario(args: argparse.Namespace, scenario: str) -> Result:
    print(f"[loadtest] {LABELS[scenario]}: {args.users} users for {args.seconds} s", flush=True)
    command, worker_commands = locust_commands(args, scenario)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen(c, cwd=ROOT, env=env) for c in worker_commands]  # noqa: S603
    try:
        finished = subprocess.run(command, cwd=ROOT, env=env, timeout=args.seconds + 300, check=False)  # noqa: S603
    finally:
        for worker in workers:
            worker.wait(timeout=60)
    with (RESULTS / f"{scenario}_stats.csv").open() as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    summary = json.loads((RESULTS / f"{scenario}.json").read_text())
    audit = summary["audit"]
    verdict = (
        "n/a" if not audit["coupons"] else "passed" if audit["passed"] else "failed: " + "; ".join(audit["problems"])
    )
    return Result(
        scenario=scenario,
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        rps=round(float(total["Requests/s"]), 1),
        p50_ms=float(total["50%"]),
        p95_ms=float(total["95%"]),
        p99_ms=float(total["99%"]),
        outcomes=dict(sorted(summary["outcomes"].items(), key=lambda item: -item[1])),
        audit=verdict,
        exit_code=finished.returncode,
    )


def outcome_words(outcomes: dict[str, int]) -> str:
    """'POST /v2/issue-async 409 INVALID_COUPON_ISSUE_QUANTITY' -> '/v2/issue-async 409 INVALID_...: 12'."""
    return "; ".join(f"{key.split(' ', 1)[1]}: {count:,}" for key, count in outcomes.items())


def warm_up(args: argparse.Namespace) -> None:
    """As many containers as users, for each function a scenario calls: the first scenario must not pay
    every cold start of the run (a deployed sale would not either: see SnapStart in docs/benchmarks.md)."""
    from concurrent.futures import ThreadPoolExecutor

    from localdev.jwt_local import mint

    token = {"Authorization": f"Bearer {mint({'sub': '1'})}"}
    calls = [("GET", "/health/live", None), ("POST", "/v1/issue", {"couponId": 2**62, "userId": 1})]
    calls.append(("POST", "/v2/issue-async", {"couponId": 2**62, "userId": 1}))  # 404: no coupon, no effect
    print(f"[loadtest] warming {args.users} containers per function", flush=True)
    with httpx.Client(base_url=args.url, timeout=60, limits=httpx.Limits(max_connections=args.users)) as client:

        def call(item: tuple[str, str, Any]) -> int:
            method, path, body = item
            return client.request(method, path, json=body, headers=token).status_code

        with ThreadPoolExecutor(max_workers=args.users) as pool:
            for _ in range(2):
                list(pool.map(call, [c for c in calls for _ in range(args.users)]))


def write_report(results: list[Result], args: argparse.Namespace) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    mode = f"a master and {args.workers} workers" if args.workers else "one locust process"
    lines = [
        f"Locust, {args.users} users without waiting, {args.seconds} s per scenario, {args.stock} seats per coupon, "
        f"{mode}; {machine}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. `make loadtest` (python -m loadtest.run).",
        "",
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | requests | failures | audit | outcomes |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {LABELS[r.scenario]} | {r.rps:,.0f} | {r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.p99_ms:.0f} | "
            f"{r.requests:,} | {r.failures:,} | {r.audit} | {outcome_words(r.outcomes)} |"
        )
    table = "\n".join(lines) + "\n"
    (RESULTS / "comparison.md").write_text(table)
    (RESULTS / "comparison.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    return table


def draw_charts(results: list[Result]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [LABELS[r.scenario] for r in results]
    figure, axes = plt.subplots(figsize=(9, 4.5))
    bars = axes.bar(names, [r.rps for r in results], color="#1f77b4", label="requests/s (all answers)")
    axes.bar_label(bars, fmt="%.0f")
    axes.set(title="Throughput per scenario", xlabel="scenario", ylabel="requests per second")
    axes.legend()
    axes.tick_params(axis="x", labelrotation=15)
    figure.tight_layout()
    figure.savefig(CHARTS / "throughput.png", dpi=110)

    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.27
    for offset, (label, values) in enumerate(
        (
            ("p50", [r.p50_ms for r in results]),
            ("p95", [r.p95_ms for r in results]),
            ("p99", [r.p99_ms for r in results]),
        )
    ):
        axes.bar([i + (offset - 1) * width for i in range(len(results))], values, width, label=label)
    axes.set_xticks(range(len(results)), names, rotation=15)
    axes.set(title="Latency percentiles per scenario", xlabel="scenario", ylabel="milliseconds")
    axes.legend(title="percentile")
    figure.tight_layout()
    figure.savefig(CHARTS / "latency.png", dpi=110)

    figure, axes = plt.subplots(figsize=(9, 4.5))
    for r in results:
        with (RESULTS / f"{r.scenario}_stats_history.csv").open() as history:
            rows = [row for row in csv.DictReader(history) if row["Name"] == "Aggregated"]
        if rows:
            start = int(rows[0]["Timestamp"])
            axes.plot([int(row["Timestamp"]) - start for row in rows], [float(row["Requests/s"]) for row in rows],
                      label=LABELS[r.scenario])  # fmt: skip
    axes.set(title="Requests per second over each run", xlabel="seconds since the start", ylabel="requests per second")
    axes.legend()
    figure.tight_layout()
    figure.savefig(CHARTS / "timeline.png", dpi=110)
    plt.close("all")


def main() -> None:
    use_local_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("LOADTEST_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    # Under IssueSyncFunction's reserved concurrency (50): more would measure its throttling, not V1.
    parser.add_argument("--users", type=int, default=48)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--stock", type=int, default=1000)
    parser.add_argument("--identities", type=int, default=2000, help="distinct users per locust process")
    parser.add_argument("--workers", default="0", help="0: one process; N or auto (one per core): distributed")
    args = parser.parse_args()
    args.url = args.url.rstrip("/")
    args.workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stack = ensure_stack(args.url)
    try:
        warm_up(args)
        results = [run_scenario(args, scenario) for scenario in scenarios]
    finally:
        if stack is not None:
            stack.terminate()
            stack.wait(timeout=60)
    print(write_report(results, args))
    draw_charts(results)
    print(f"[loadtest] reports, CSV, comparison and charts in {RESULTS.relative_to(ROOT)}/")
    failed = [r.scenario for r in results if r.exit_code or r.audit.startswith("failed")]
    if failed:
        raise SystemExit(f"[loadtest] failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
