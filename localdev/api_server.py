"""A local API Gateway (HTTP API, payload 2.0) for the functions of template.yaml, without containers.

Each request becomes the event AWS would send and is handed to the function's handler in-process, on a
worker thread, as `sam local start-api` would do in a container. Served by uvicorn.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from couponcore import metrics
from localdev import jwt_local
from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext, http_api_event
from localdev.reconcile import run_once
from localdev.sqs_local import Poller, QueueSettings, ensure_issue_queue, sqs_client
from localdev.template_routes import HttpRoute, http_routes

ROOT = Path(__file__).resolve().parent.parent
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
log = logging.getLogger("localdev.api")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class LocalHttpApi:
    def __init__(self, template_path: Path, concurrency: int, auth: str = "dev") -> None:
        self.auth = auth
        self.routes = sorted(http_routes(template_path), key=lambda r: (r.path.count("{"), r.path))
        self._functions = {
            route.function: LocalFunction(route.function, route.code_dir, route.handler) for route in self.routes
        }
        self._limiter = anyio.CapacityLimiter(concurrency)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if (method, path) == ("GET", "/metrics"):
            # Served by the local server itself: the Prometheus view of the layer's metrics registry.
            payload = generate_latest(metrics.registry)
            await _send(send, 200, {"content-type": CONTENT_TYPE_LATEST}, payload)
            return
        matched = self.match(method, path)
        body = await self._read_body(receive)
        if body is None:
            await _send(send, 413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            return
        if matched is None:
            await _send(send, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        route, path_parameters = matched
        event = self._event(scope, route, path_parameters, body)
        if self.auth == "jwt" and route.authorizer != "NONE":
            claims = _verified_claims(event["headers"].get("authorization", ""))
            if claims is None:  # what API Gateway answers before any function runs
                await _send(send, 401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}')
                return
            scopes = str(claims.get("scope", "")).split()
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes}}
        context = LocalLambdaContext(function_name=route.function)
        function = self._functions[route.function]
        try:
            result = await anyio.to_thread.run_sync(function.invoke, event, context, limiter=self._limiter)
        except Exception:
            log.exception("handler %s raised", route.function)  # AWS answers this way, without the trace
            await _send(send, 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
            return
        await self._respond(send, result)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for route in self.routes:
                    log.info("route %-7s %-40s -> %s", route.method, route.path, route.function)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _read_body(receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_PAYLOAD_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def _event(scope: Scope, route: HttpRoute, path_parameters: dict[str, str], body: bytes) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        text: str | None = None
        encoded = False
        if body:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text, encoded = base64.b64encode(body).decode(), True
        client = scope.get("client") or ("127.0.0.1", 0)
        return http_api_event(
            scope["method"],
            scope["path"],
            route_key=route.route_key,
            path_parameters=path_parameters or None,
            body=text,
            headers=headers,
            query=scope.get("query_string", b"").decode("latin-1"),
            source_ip=client[0],
            is_base64_encoded=encoded,
        )

    @staticmethod
    async def _respond(send: Send, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # Payload 2.0: a bare value is a 200 JSON answer.
            await _send(send, 200, {"content-type": "application/json"}, json.dumps(result).encode())
            return
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        cookies = [str(c) for c in result.get("cookies") or []]
        await _send(send, int(result["statusCode"]), headers, payload, cookies)


def _verified_claims(authorization: str) -> dict[str, Any] | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return jwt_local.verify(
            token,
            os.environ.get("LOCAL_JWT_SECRET", jwt_local.DEFAULT_SECRET),
            os.environ.get("LOCAL_JWT_ISSUER", jwt_local.DEFAULT_ISSUER),
            os.environ.get("LOCAL_JWT_AUDIENCE", jwt_local.DEFAULT_AUDIENCE),
        )
    except jwt_local.InvalidTokenError:
        return None


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes, cookies: Sequence[str] = ()) -> None:
    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items() if k != "content-length"]
    raw_headers += [(b"set-cookie", c.encode()) for c in cookies]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class Reconciler:
    """The template's reconcile schedule, run in-process."""

    def __init__(self, every_s: float) -> None:
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconcile", daemon=True)

    def start(self) -> Reconciler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                report = run_once()
                if any(report.get(k) for k in ("resent", "restored", "confirmed")):
                    log.info("reconciliation: %s", report)
            except Exception:
                log.exception("reconciliation failed")


class QueueWatcher:
    """Queue depth and dead letters as gauges (in AWS, CloudWatch's own SQS metrics show them)."""

    def __init__(self, queue_url: str, dlq_url: str | None, endpoint: str | None, every_s: float = 5.0) -> None:
        self._queue_url, self._dlq_url, self._endpoint, self._every_s = queue_url, dlq_url, endpoint, every_s
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="queue-watcher", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        sqs = sqs_client(self._endpoint)
        while not self._stop.wait(self._every_s):
            try:
                metrics.set_gauge(metrics.QUEUE_MESSAGES, _depth(sqs, self._queue_url))
                if self._dlq_url:
                    metrics.set_gauge(metrics.DLQ_MESSAGES, _depth(sqs, self._dlq_url))
            except Exception:
                log.warning("queue depth not read", exc_info=True)


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def start_async_workers(template_path: Path, reconcile_every_s: float) -> tuple[Poller, Reconciler, QueueWatcher]:
    """The SQS queue pair, its poller feeding batch_persist, and the reconcile schedule."""
    settings = QueueSettings.from_template(template_path)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    dlq_url = ensure_issue_queue(settings)
    poller = Poller(os.environ["ISSUE_QUEUE_URL"], settings, endpoint).start()
    log.info(
        "poller feeds batch_persist: batch %d, window %.1f s, %d in flight",
        settings.batch_size,
        settings.batching_window_s,
        settings.max_concurrency,
    )
    watcher = QueueWatcher(os.environ["ISSUE_QUEUE_URL"], dlq_url, endpoint)
    return poller, Reconciler(reconcile_every_s).start(), watcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("LOCAL_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_API_PORT", "3000")))
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("LOCAL_API_CONCURRENCY", "32")),
        help="handler invocations in flight at once",
    )
    parser.add_argument("--no-workers", action="store_true", help="serve the API only: no SQS poller, no reconcile")
    parser.add_argument(
        "--auth",
        choices=["dev", "jwt"],
        default=os.environ.get("LOCAL_AUTH", "dev"),
        help="dev: trust the body's userId; jwt: verify a local HS256 JWT as the API's authorizers would",
    )
    parser.add_argument("--reconcile-every", type=float, default=60.0, help="seconds between reconcile runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import uvicorn

    if args.auth == "jwt":
        os.environ["REQUIRE_IDENTITY"] = "true"
        log.info(
            "identity: JWT mode; tokens signed with LOCAL_JWT_SECRET are verified, admin needs scope %s", "coupon/admin"
        )
    else:
        log.warning(
            "identity: DEVELOPMENT mode, the body's userId is trusted and admin routes are open "
            "(--auth jwt verifies tokens as AWS would)"
        )
    workers = None if args.no_workers else start_async_workers(args.template, args.reconcile_every)
    app = LocalHttpApi(args.template, args.concurrency, args.auth)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on")
    finally:
        if workers:
            for worker in workers:
                worker.stop()


if __name__ == "__main__":
    main()
