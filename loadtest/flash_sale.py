"""A flash sale against the HTTP API: N users race for the M seats of a coupon, then the result is audited.

    python -m loadtest.flash_sale [--url http://127.0.0.1:3000] [--route v2] [--users 5000] [--stock 1000]
                                  [--concurrency 100] [--repeat 0.2] [--coupons 1] [--no-burst]

Against a local URL with no server answering, it starts one (python -m localdev.api_server) and stops it
after. It prints progress every second, then a report (requests/s, latency percentiles, count per contract
code), writes an SVG chart of requests/s and latency over time, and verifies through the API (and MySQL,
when local) that exactly min(stock, users) seats were issued per coupon, none twice, and that every 200/202
answer ended ISSUED. Exit code 1 when the audit fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
SUCCESS = {200, 202}


@dataclass
class Outcome:
    user: int
    coupon: int
    status: int
    code: str
    started: float
    latency_s: float


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def create_coupons(client: httpx.Client, count: int, stock: int, mode: str, admin: dict[str, str]) -> list[int]:
    ids = []
    for index in range(count):
        response = client.post(
            "/coupons",
            json={
                "title": f"Flash sale {index + 1}",
                "totalQuantity": stock,
                "discountAmount": 1000,
                "minAvailableAmount": 0,
                "dateIssueStart": "2020-01-01T00:00:00Z",
                "dateIssueEnd": "2099-01-01T00:00:00Z",
                "issueMode": mode,
            },
            headers=admin,
        )
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
    return ids


def connect(url: str) -> http.client.HTTPConnection:
    """A plain keep-alive connection per client thread: far cheaper per request than an async client."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=30)
    return http.client.HTTPConnection(parts.netloc, timeout=30)


class Identities:
    """Tokens from the local issuer (what `make token` prints): one per user, and an admin's."""

    def __init__(self, users: int) -> None:
        from localdev.jwt_local import ADMIN_SCOPE, mint

        self.admin = {"Authorization": f"Bearer {mint({'sub': '1', 'scope': f'openid {ADMIN_SCOPE}'}, ttl_s=6 * 3600)}"}
        self._tokens = {user: mint({"sub": str(user)}, ttl_s=6 * 3600) for user in range(1, users + 1)}

    def of(self, user: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens[user]}"}


def fire(
    url: str, path: str, plan: list[tuple[int, int]], concurrency: int, *, burst: bool, run: Run, who: Identities
) -> None:
    prefix = urlsplit(url).path.rstrip("/")
    work = iter(plan)
    take = threading.Lock()
    gun = threading.Barrier(concurrency + 1)

    def client() -> None:
        connection = connect(url)
        if burst:
            gun.wait()  # every client connected and ready, then all fire at once
        while True:
            with take:
                item = next(work, None)
            if item is None:
                return
            user, coupon = item
            body = json.dumps({"couponId": coupon, "userId": user})
            started = time.monotonic()
            try:
                headers = {"Content-Type": "application/json", **who.of(user)}
                connection.request("POST", prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status, code = response.status, str(json.loads(payload or b"{}").get("code", response.status))
            except (OSError, http.client.HTTPException, ValueError) as error:
                status, code = 0, type(error).__name__
                connection.close()
                connection = connect(url)
            run.outcomes.append(Outcome(user, coupon, status, code, started, time.monotonic() - started))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    run.started = time.monotonic()
    if burst:
        gun.wait()
        run.started = time.monotonic()
    stop = threading.Event()
    progress = threading.Thread(target=show_progress, args=(run, len(plan), stop), daemon=True)
    progress.start()
    for thread in threads:
        thread.join()
    run.finished = time.monotonic()
    stop.set()


def show_progress(run: Run, total: int, stop: threading.Event) -> None:
    last = 0
    while not stop.wait(1):
        done = len(run.outcomes)
        codes = Counter(o.code for o in run.outcomes)
        print(
            f"  t={time.monotonic() - run.started:5.1f}s  {done}/{total} answered  {done - last:6d} req/s  "
            f"{dict(codes.most_common(4))}",
            flush=True,
        )
        last = done


def report(run: Run) -> dict[str, Any]:
    elapsed = run.finished - run.started
    latencies = [o.latency_s * 1000 for o in run.outcomes]
    rate = round(len(run.outcomes) / elapsed, 1) if elapsed else 0.0
    latency = {q: round(percentile(latencies, p), 1) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
    codes = dict(Counter(f"{o.status} {o.code}" for o in run.outcomes).most_common())
    print(f"\n{len(run.outcomes)} requests in {elapsed:.2f} s: {rate} req/s")
    print(f"latency p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms")
    for code, count in codes.items():
        print(f"  {count:8d}  {code}")
    return {"requests": len(run.outcomes), "seconds": elapsed, "rps": rate, "latency_ms": latency, "codes": codes}


def chart(run: Run, path: Path, title: str) -> None:
    """One SVG (viewable in a browser and in a README): requests/s and p99 latency per second."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for outcome in run.outcomes:
        buckets[int(outcome.started + outcome.latency_s - run.started)].append(outcome.latency_s * 1000)
    seconds = list(range(max(buckets) + 1)) if buckets else [0]
    width, height, pad = 760, 230, 48

    def plot(values: list[float], label: str, color: str, top_y: int) -> str:
        top = max(values) or 1.0
        step = (width - 2 * pad) / max(1, len(values) - 1)
        points = " ".join(
            f"{pad + i * step:.1f},{top_y + height - pad - v / top * (height - 2 * pad):.1f}"
            for i, v in enumerate(values)
        )
        base = top_y + height - pad
        return (
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>'
            f'<line x1="{pad}" y1="{base}" x2="{width - pad}" y2="{base}" stroke="#999"/>'
            f'<line x1="{pad}" y1="{top_y + pad}" x2="{pad}" y2="{base}" stroke="#999"/>'
            f'<text x="{pad}" y="{top_y + pad - 12}" font-size="13">{label} (max {top:,.0f})</text>'
            f'<text x="{width - pad}" y="{base + 18}" font-size="11" text-anchor="end">'
            f"seconds since the start gun</text>"
        )

    rps = [float(len(buckets.get(s, []))) for s in seconds]
    p99 = [percentile(buckets.get(s, []), 0.99) for s in seconds]
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{2 * height + 40}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>'
        f'<text x="{pad}" y="24" font-size="15" font-weight="bold">{title}</text>'
        f"{plot(rps, 'requests/s', '#1f77b4', 30)}{plot(p99, 'p99 latency, ms', '#d62728', 30 + height)}</svg>"
    )


def audit(
    client: httpx.Client, run: Run, coupons: list[int], stock: int, users: int, *, timeout_s: float, who: Identities
) -> list[str]:
    problems = []
    winners: dict[int, set[int]] = defaultdict(set)
    wins_per_user: Counter[tuple[int, int]] = Counter()
    for outcome in run.outcomes:
        if outcome.status in SUCCESS:
            winners[outcome.coupon].add(outcome.user)
            wins_per_user[(outcome.coupon, outcome.user)] += 1
    twice = [key for key, count in wins_per_user.items() if count > 1]
    if twice:
        problems.append(f"{len(twice)} users were answered success twice, e.g. {twice[:3]}")
    expected = min(stock, users)
    deadline = time.monotonic() + timeout_s
    for coupon in coupons:
        if len(winners[coupon]) != expected:
            problems.append(f"coupon {coupon}: {len(winners[coupon])} success answers, expected {expected}")
        while True:  # async paths: wait for batch_persist to catch up
            issued = int(client.get(f"/coupons/{coupon}", headers=who.admin).json()["issuedQuantity"])
            if issued >= len(winners[coupon]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if issued != expected:
            problems.append(f"coupon {coupon}: issuedQuantity {issued}, expected {expected}")

        def status(user: int, coupon_id: int = coupon) -> str:
            body = client.get(f"/coupons/{coupon_id}/issues/{user}", headers=who.of(user)).json()
            return str(body.get("status", body.get("code")))

        # Fewer than the status function's reserved concurrency (20), or the audit itself is throttled.
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = Counter(pool.map(status, winners[coupon]))
        if statuses.get("ISSUED", 0) != len(winners[coupon]):
            problems.append(f"coupon {coupon}: winners' statuses {dict(statuses)}, all should be ISSUED")
    return problems


def audit_mysql(coupons: list[int], expected: int) -> list[str]:
    """When the database is ours (local), count rows directly too."""
    sys.path.insert(0, str(ROOT / "layers" / "couponcore"))
    from sqlalchemy import text

    from couponcore.bootstrap import container

    problems = []
    with container().engine.connect() as connection:
        for coupon in coupons:
            issued, rows, users = connection.execute(
                text(
                    "SELECT c.issued_quantity, COUNT(i.id), COUNT(DISTINCT i.user_id) FROM coupons c "
                    "LEFT JOIN coupon_issues i ON i.coupon_id = c.id WHERE c.id = :c GROUP BY c.id"
                ),
                {"c": coupon},
            ).one()
            if not issued == rows == users == expected:
                problems.append(f"MySQL coupon {coupon}: issued_quantity={issued} rows={rows} users={users}")
    return problems


def ensure_server(url: str) -> subprocess.Popen[bytes] | None:
    try:
        if httpx.get(f"{url}/health", timeout=2).status_code == 200:
            return None
    except httpx.HTTPError:
        pass
    if "127.0.0.1" not in url and "localhost" not in url:
        raise SystemExit(f"{url} does not answer /health")
    print(f"starting the local stack for {url}")
    port = url.rsplit(":", 1)[-1].strip("/")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "localdev.api_server", "--port", port]
    server = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 - our own interpreter and module
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.terminate()
    raise SystemExit("the local stack did not start")


def run_sale(args: argparse.Namespace) -> int:
    route_path = {"v1": "/v1/issue", "v1-async": "/v1/issue-async", "v2": "/v2/issue-async"}[args.route]
    limits = httpx.Limits(max_connections=64)
    who = Identities(args.users)
    with httpx.Client(base_url=args.url, timeout=30, limits=limits) as client:
        mode = "SYNC" if args.route == "v1" else "ASYNC"
        coupons = create_coupons(client, args.coupons, args.stock, mode, who.admin)
        rng = random.Random(args.seed)
        plan = [(user, coupon) for coupon in coupons for user in range(1, args.users + 1)]
        plan += [rng.choice(plan) for _ in range(int(len(plan) * args.repeat))]  # impatient users click again
        rng.shuffle(plan)
        print(
            f"{len(plan)} requests from {args.users} users for {args.coupons} coupon(s) of {args.stock} seats "
            f"on {args.route}, {args.concurrency} in flight, {'start gun' if args.burst else 'ramp'}"
        )
        run = Run()
        fire(args.url, route_path, plan, args.concurrency, burst=args.burst, run=run, who=who)
        report(run)
        chart_path = Path(args.chart)
        chart(run, chart_path, f"Flash sale on {args.route}: {len(plan)} requests, {args.concurrency} in flight")
        print(f"chart: {chart_path}")
        problems = audit(client, run, coupons, args.stock, args.users, timeout_s=args.persist_timeout, who=who)
    local = "127.0.0.1" in args.url or "localhost" in args.url
    if local and not args.no_db_check:
        problems += audit_mysql(coupons, min(args.stock, args.users))
    if problems:
        print("AUDIT FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(f"audit passed: {min(args.stock, args.users)} issued per coupon, none twice, every success ISSUED")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("LOADTEST_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--route", choices=["v1", "v1-async", "v2"], default="v2")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--stock", type=int, default=1000, help="seats per coupon")
    parser.add_argument("--coupons", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (a container each)")
    parser.add_argument("--repeat", type=float, default=0.2, help="extra requests from users trying again, as a share")
    parser.add_argument("--no-burst", dest="burst", action="store_false", help="ramp up instead of a start gun")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chart", default=str(ROOT / "loadtest" / "last-run.svg"))
    parser.add_argument("--persist-timeout", type=float, default=120)
    parser.add_argument("--no-db-check", action="store_true", help="audit through the API only")
    args = parser.parse_args()
    server = ensure_server(args.url.rstrip("/"))
    try:
        code = run_sale(args)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
