"""A local Lambda service: each function of template.yaml runs in its own processes, one invocation at a
time per process, under AWS's runtime interface client (`python -m awslambdaric`), as in a Lambda
container image.

For every container the runtime opens a Runtime API endpoint of its own (Lambda's
`/2018-06-01/runtime/...` routes on a loopback port) and starts the client against it with the
function's environment. An invocation takes a warm idle container, or starts one (a cold start) while
the function is under its concurrency limit, or is throttled. A container that outlives the function's
`Timeout`, dies, or fails its init is stopped and never reused; idle ones are stopped after a while.
Each invocation is logged the way Lambda ends one (`REPORT RequestId ... Init Duration ...`).

A container's stdout and stderr are its log. Lines that are EMF metric records go to `on_metrics`
(CloudWatch would read them from the log); the rest are printed with the function's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from localdev.template import FunctionConfig

log = logging.getLogger("localdev.lambda")
RUNTIME_API = "/2018-06-01/runtime"
RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024  # a synchronous invocation's response, as Lambda allows
INIT_TIMEOUT_S = 10.0  # Lambda's limit on an on-demand init phase
FINISHING_GRACE_S = 0.05
REGION = "us-east-1"
ACCOUNT = "000000000000"


# Lambda keeps this much of an account's concurrency for the functions that reserve none.
UNRESERVED_MINIMUM = 100


class QuotaError(Exception):
    """What CloudFormation answers a template whose reserved concurrency the account cannot give."""


class TooManyRequestsError(Exception):
    """The function, or the account, is at its concurrency limit (Lambda's TooManyRequestsException)."""


class InvocationError(Exception):
    """The invocation ended without a response: a timeout, a crash, an init error or an unhandled error."""

    def __init__(self, kind: str, message: str, payload: bytes = b"") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.payload = payload


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    result: asyncio.Future[bytes]
    started: float = field(default_factory=time.perf_counter)


@dataclass
class Container:
    id: str
    function: FunctionConfig
    port: int
    site: web.SockSite
    started: float = field(default_factory=time.perf_counter)
    process: asyncio.subprocess.Process | None = None
    ready: asyncio.Future[None] | None = None  # resolved by the first call to /next: init is over
    waiting: asyncio.Future[Invocation] | None = None  # resolved with the next invocation to run
    current: Invocation | None = None
    init_ms: float | None = None
    invocations: int = 0
    last_used: float = field(default_factory=time.monotonic)
    finishing: bool = False  # answered, not yet back at /next
    retiring: bool = False  # stopped once its invocation is done (recycle)
    dead: bool = False


@dataclass
class FunctionStats:
    """What the runtime observed of one function (read by tests and the benchmark)."""

    cold_starts: int = 0
    invocations: int = 0
    throttles: int = 0
    timeouts: int = 0
    crashes: int = 0
    errors: int = 0  # invocations that ended in an error or a timeout
    init_ms: list[float] = field(default_factory=list)
    duration_ms: list[float] = field(default_factory=list)  # each invocation's REPORT Duration
    peak_concurrency: int = 0


@dataclass(frozen=True)
class Report:
    """What Lambda's REPORT line says of one invocation."""

    function: str
    duration_ms: float
    init_ms: float | None  # the container's init, on its first invocation only
    max_memory_mb: int
    status: str  # "" when it answered; "error" or "timeout"


class FunctionPool:
    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.idle: list[Container] = []  # most recently used last: warm containers are reused first
        self.containers: dict[str, Container] = {}
        self.in_flight = 0
        # Containers that answered and have not yet asked for the next invocation (a few hundred µs).
        self.finishing = 0
        self.changed = asyncio.Condition()  # notified when a container becomes idle
        self.stats = FunctionStats()


_reservoir_second = [0]  # the second whose one reserved trace was taken


def _trace_header() -> str:
    # X-Ray's default sampling rule: one request each second (the reservoir), then 5 % of the rest.
    now = int(time.time())
    first_this_second = _reservoir_second[0] != now
    _reservoir_second[0] = now
    sampled = 1 if first_this_second or random.random() < 0.05 else 0
    return f"Root=1-{now:08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled={sampled}"


def _max_memory_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class LambdaRuntime:
    def __init__(
        self,
        functions: dict[str, FunctionConfig],
        environment: Callable[[FunctionConfig], dict[str, str]],
        *,
        account_concurrency: int = 1000,
        max_containers: int = 64,
        idle_timeout_s: float = 600.0,
        on_metrics: Callable[[dict[str, Any]], None] | None = None,
        on_report: Callable[[Report], None] | None = None,
        python: str = sys.executable,
    ) -> None:
        self._pools = {name: FunctionPool(config) for name, config in functions.items()}
        self._environment = environment
        reserved = sum(c.reserved_concurrency or 0 for c in functions.values())
        if reserved and account_concurrency - reserved < UNRESERVED_MINIMUM:
            raise QuotaError(
                f"Specified ReservedConcurrentExecutions ({reserved} in all) decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{UNRESERVED_MINIMUM}] "
                f"(account concurrency {account_concurrency})"
            )
        # Functions without reserved concurrency share what the account has left, as in Lambda.
        self._unreserved_limit = max(0, account_concurrency - reserved)
        self._unreserved_in_flight = 0
        # What this machine can hold, whatever the account allows: past it an invocation waits for a
        # container to free (an idle one of another function is stopped to make room), as on a slower
        # machine; it is never throttled for it, since AWS would not throttle it.
        self._max_containers = max_containers
        self._capacity = asyncio.Condition()
        # Inits run a few at a time: on a shared machine, 30 Python inits at once only slow each other
        # past Lambda's 10 s init limit; queued ones start as soon as a core is free.
        self._init_slots = asyncio.Semaphore(os.cpu_count() or 2)
        self._starting = 0
        self._idle_timeout_s = idle_timeout_s
        self._on_metrics = on_metrics
        self._on_report = on_report
        self._python = python
        self._by_port: dict[int, Container] = {}
        self._runner: web.AppRunner | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle ----

    async def start(self) -> None:
        # Lambda takes responses up to 6 MB from a function (aiohttp's own default would be 1 MB).
        app = web.Application(client_max_size=RESPONSE_LIMIT_BYTES)
        app.router.add_get(f"{RUNTIME_API}/invocation/next", self._next)
        app.router.add_post(f"{RUNTIME_API}/invocation/{{request_id}}/response", self._response)
        app.router.add_post(f"{RUNTIME_API}/invocation/{{request_id}}/error", self._error)
        app.router.add_post(f"{RUNTIME_API}/init/error", self._init_error)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._reaper = asyncio.create_task(self._reap_idle())

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        for pool in self._pools.values():
            for container in list(pool.containers.values()):
                await self._stop_container(container, "shutdown")
        if self._runner:
            await self._runner.cleanup()

    def stats(self, function: str) -> FunctionStats:
        return self._pools[function].stats

    def concurrent_executions(self, function: str) -> int:
        return self._pools[function].in_flight

    def containers(self, function: str) -> list[Container]:
        return list(self._pools[function].containers.values())

    def function_names(self) -> list[str]:
        return list(self._pools)

    async def settled(self, timeout_s: float) -> None:
        """Returns once no invocation is running: a client that hung up leaves its request running here,
        as API Gateway leaves the Lambda invocation running, and an audit must wait for it."""
        deadline = time.monotonic() + timeout_s
        while any(pool.in_flight for pool in self._pools.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"invocations still running after {timeout_s} s")
            await asyncio.sleep(0.01)

    # ---- invoking ----

    async def invoke(self, function: str, event: Any) -> Any:
        """Runs one invocation and returns the handler's answer (decoded JSON).

        Raises TooManyRequestsError over the concurrency limit and InvocationError when no answer came back."""
        pool = self._pools[function]
        self._admit(pool)
        try:
            container = await self._container_for(pool)
            payload = await self._run(container, json.dumps(event).encode())
        finally:
            self._release(pool)
        return json.loads(payload) if payload else None

    async def recycle(self) -> None:
        """Retires every container, as Lambda does: idle ones stop now, busy ones once their invocation is
        done. The next invocations of every function start cold."""
        for pool in self._pools.values():
            for container in list(pool.containers.values()):
                if container in pool.idle:
                    await self._stop_container(container, "recycled")
                else:
                    container.retiring = True

    async def provision(self, function: str, count: int) -> None:
        """Start containers until the function has `count` of them, warm and idle (what provisioned
        concurrency does before traffic comes)."""
        pool = self._pools[function]

        async def one_more() -> None:
            async with self._init_slots:
                container = await self._cold_start(pool)
            pool.idle.append(container)
            await self._freed(pool)

        room = self._max_containers - self._alive() - self._starting
        await asyncio.gather(*(one_more() for _ in range(min(room, count - len(pool.containers)))))

    async def _container_for(self, pool: FunctionPool) -> Container:
        """A warm container of the function, or a new one once the machine has room for it."""
        while True:
            if pool.idle:
                return pool.idle.pop()
            if pool.finishing and await self._idle_within(pool, FINISHING_GRACE_S):
                continue
            if self._starting + self._alive() < self._max_containers:
                started = await self._start_unless_freed(pool)
                if started is not None:
                    return started
                continue
            others = [c for p in self._pools.values() if p is not pool for c in p.idle]
            if others:
                await self._stop_container(min(others, key=lambda c: c.last_used), "making room")
                continue
            async with self._capacity:
                await self._capacity.wait()

    def _alive(self) -> int:
        return sum(len(p.containers) for p in self._pools.values())

    async def _start_unless_freed(self, pool: FunctionPool) -> Container | None:
        """A cold start once an init slot is free; None if one of the function's own containers frees
        first (inits queue here only because this machine runs a few at a time, so a warm container
        that frees meanwhile serves the request sooner)."""
        self._starting += 1  # counted against the machine while it waits
        try:
            slot = asyncio.ensure_future(self._init_slots.acquire())
            freed = asyncio.ensure_future(self._idle_within(pool, None))
            await asyncio.wait({slot, freed}, return_when=asyncio.FIRST_COMPLETED)
            freed.cancel()
            if not slot.done():
                slot.cancel()
                return None
            if pool.idle:  # both at once: the warm container wins, the slot goes back
                self._init_slots.release()
                return None
        finally:
            self._starting -= 1
        try:
            return await self._cold_start(pool)
        finally:
            self._init_slots.release()

    @staticmethod
    async def _idle_within(pool: FunctionPool, timeout_s: float | None) -> bool:
        """Whether one of the function's containers becomes idle within the time (None: wait for it)."""
        async with pool.changed:
            try:
                await asyncio.wait_for(pool.changed.wait_for(lambda: bool(pool.idle)), timeout_s)
            except TimeoutError:
                return False
        return True

    async def _freed(self, pool: FunctionPool) -> None:
        async with pool.changed:
            pool.changed.notify_all()
        async with self._capacity:
            self._capacity.notify_all()

    def _admit(self, pool: FunctionPool) -> None:
        reserved = pool.config.reserved_concurrency
        if reserved is not None and pool.in_flight >= reserved:
            pool.stats.throttles += 1
            raise TooManyRequestsError(f"{pool.config.name}: reserved concurrency {reserved} reached")
        if reserved is None:
            if self._unreserved_in_flight >= self._unreserved_limit:
                pool.stats.throttles += 1
                raise TooManyRequestsError(f"account concurrency reached ({self._unreserved_limit} unreserved)")
            self._unreserved_in_flight += 1
        pool.in_flight += 1
        pool.stats.peak_concurrency = max(pool.stats.peak_concurrency, pool.in_flight)

    def _release(self, pool: FunctionPool) -> None:
        pool.in_flight -= 1
        if pool.config.reserved_concurrency is None:
            self._unreserved_in_flight -= 1

    async def _run(self, container: Container, payload: bytes) -> bytes:
        config = container.function
        loop = asyncio.get_running_loop()
        deadline_ms = int((time.time() + config.timeout_s) * 1000)
        invocation = Invocation(str(uuid.uuid4()), payload, deadline_ms, loop.create_future())
        container.current = invocation
        assert container.waiting is not None and not container.waiting.done()
        container.waiting.set_result(invocation)
        pool = self._pools[config.name]
        pool.stats.invocations += 1
        try:
            return await asyncio.wait_for(asyncio.shield(invocation.result), config.timeout_s)
        except TimeoutError:
            pool.stats.timeouts += 1
            self._report(container, invocation, status="timeout")
            log.error("%s %s Task timed out after %.2f seconds", config.name, invocation.request_id, config.timeout_s)
            await self._stop_container(container, "timed out")
            raise InvocationError("timeout", f"Task timed out after {config.timeout_s:.2f} seconds") from None
        finally:
            if container.current is invocation:
                container.current = None
            container.last_used = time.monotonic()

    async def _cold_start(self, pool: FunctionPool) -> Container:
        config = pool.config
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert self._runner is not None
        site = web.SockSite(self._runner, sock)
        await site.start()
        container = Container(uuid.uuid4().hex[:8], config, port, site, ready=loop.create_future())
        self._by_port[port] = container
        pool.containers[container.id] = container
        pool.stats.cold_starts += 1
        env = {
            **self._environment(config),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{container.id}",
        }
        container.process = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "awslambdaric",
            config.handler,
            cwd=config.code_dir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._spawn(self._pump_output(container))
        self._spawn(self._watch_exit(container))
        assert container.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(container.ready), INIT_TIMEOUT_S)
        except TimeoutError:
            await self._stop_container(container, "init timed out")
            raise InvocationError("init", f"Init timed out after {INIT_TIMEOUT_S:.0f} seconds") from None
        return container

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump_output(self, container: Container) -> None:
        assert container.process is not None and container.process.stdout is not None
        name = container.function.name
        while line := await container.process.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            if text.startswith('{"_aws"') and self._on_metrics is not None:
                try:
                    self._on_metrics(json.loads(text))
                    continue
                except ValueError:
                    pass
            if text:
                print(f"[{name} {container.id}] {text}", flush=True)

    async def _watch_exit(self, container: Container) -> None:
        assert container.process is not None
        code = await container.process.wait()
        if container.dead:
            return
        pool = self._pools[container.function.name]
        pool.stats.crashes += 1
        reason = f"signal {-code}" if code < 0 else f"exit status {code}"
        log.error("%s container %s exited (%s)", container.function.name, container.id, reason)
        failure = InvocationError("crash", f"Runtime exited with error: {reason}")
        self._fail_pending(container, failure)
        await self._stop_container(container, reason)

    def _fail_pending(self, container: Container, failure: InvocationError) -> None:
        if container.ready is not None and not container.ready.done():
            container.ready.set_exception(failure)
        if container.current is not None and not container.current.result.done():
            container.current.result.set_exception(failure)

    async def _stop_container(self, container: Container, why: str) -> None:
        if container.dead:
            return
        container.dead = True
        pool = self._pools[container.function.name]
        pool.containers.pop(container.id, None)
        if container in pool.idle:
            pool.idle.remove(container)
        if container.finishing:
            container.finishing = False
            pool.finishing -= 1
        self._by_port.pop(container.port, None)
        self._fail_pending(container, InvocationError("crash", f"container stopped: {why}"))
        if container.waiting is not None and not container.waiting.done():
            container.waiting.cancel()
        if container.process is not None and container.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(container.process.pid, signal.SIGKILL)
            await container.process.wait()
        await container.site.stop()
        await self._freed(pool)
        log.debug("%s container %s stopped: %s", container.function.name, container.id, why)

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self._idle_timeout_s / 2))
            cutoff = time.monotonic() - self._idle_timeout_s
            for pool in self._pools.values():
                for container in [c for c in pool.idle if c.last_used < cutoff]:
                    await self._stop_container(container, "idle")

    def _report(self, container: Container, invocation: Invocation, status: str = "") -> None:
        """Lambda's REPORT line: for every invocation at debug level, for cold starts and failures at info."""
        cold = container.invocations == 0 and container.init_ms is not None
        container.invocations += 1
        duration_ms = (time.perf_counter() - invocation.started) * 1000
        stats = self._pools[container.function.name].stats
        stats.duration_ms.append(duration_ms)
        stats.errors += bool(status)
        level = logging.INFO if cold or status else logging.DEBUG
        if self._on_report is None and not log.isEnabledFor(level):
            return
        pid = container.process.pid if container.process else 0
        report = Report(
            container.function.name, duration_ms, container.init_ms if cold else None, _max_memory_mb(pid), status
        )
        if self._on_report is not None:
            self._on_report(report)
        if not log.isEnabledFor(level):
            return
        line = (
            f"REPORT RequestId: {invocation.request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {container.function.memory_mb} MB\t"
            f"Max Memory Used: {report.max_memory_mb} MB"
        )
        if cold:
            line += f"\tInit Duration: {container.init_ms:.2f} ms"
        if status:
            line += f"\tStatus: {status}"
        log.log(level, "%s %s", container.function.name, line)

    # ---- the Runtime API, as each container's client sees it ----

    def _container(self, request: web.Request) -> Container:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        container = self._by_port.get(sockname[1]) if sockname else None
        if container is None or container.dead:
            raise web.HTTPGone()
        return container

    async def _next(self, request: web.Request) -> web.StreamResponse:
        container = self._container(request)
        pool = self._pools[container.function.name]
        container.waiting = asyncio.get_running_loop().create_future()
        assert container.ready is not None
        if not container.ready.done():
            container.init_ms = (time.perf_counter() - container.started) * 1000
            pool.stats.init_ms.append(container.init_ms)
            container.ready.set_result(None)  # the cold start's own invocation comes next
        else:
            if container.finishing:
                container.finishing = False
                pool.finishing -= 1
            if container.retiring:
                await self._stop_container(container, "recycled")
                return web.Response(status=410)
            pool.idle.append(container)
            await self._freed(pool)
        try:
            invocation = await container.waiting
        except asyncio.CancelledError:
            if container in pool.idle:
                pool.idle.remove(container)
            raise
        config = container.function
        return web.Response(
            body=invocation.payload,
            content_type="application/json",
            headers={
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{config.name}",
                "Lambda-Runtime-Trace-Id": _trace_header(),
            },
        )

    def _finish(self, request: web.Request, outcome: bytes | InvocationError) -> web.Response:
        container = self._container(request)
        invocation = container.current
        if invocation is None or invocation.request_id != request.match_info["request_id"]:
            return web.json_response({"errorType": "InvalidRequestID"}, status=400)
        self._report(container, invocation, status="" if isinstance(outcome, bytes) else "error")
        container.current = None
        container.finishing = True
        self._pools[container.function.name].finishing += 1
        if not invocation.result.done():
            if isinstance(outcome, bytes):
                invocation.result.set_result(outcome)
            else:
                invocation.result.set_exception(outcome)
        return web.json_response({"status": "OK"}, status=202)

    async def _response(self, request: web.Request) -> web.Response:
        return self._finish(request, await request.read())

    async def _error(self, request: web.Request) -> web.Response:
        body = await request.read()
        error_type = request.headers.get("Lambda-Runtime-Function-Error-Type", "Unhandled")
        return self._finish(request, InvocationError("error", error_type, body))

    async def _init_error(self, request: web.Request) -> web.Response:
        container = self._container(request)
        body = await request.read()
        log.error("%s init failed: %s", container.function.name, body.decode(errors="replace")[:2000])
        self._fail_pending(container, InvocationError("init", "Init error", body))
        return web.json_response({"status": "OK"}, status=202)
