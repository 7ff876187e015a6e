"""The whole local stack of template.yaml: the Lambda runtime, the HTTP API in front of it, the SQS
event source mapping, the schedules, and the metrics view. `make run` serves it (localdev.api_server);
tests and benchmarks start it in a background thread (`BackgroundStack`).

Each function runs with the template's own configuration: its Globals and function environment, memory,
timeout and concurrency, deployed with a documented parameter set into the local account (localdev/account.py:
its queues, its secrets, its cache user). A function reads its credentials from Secrets Manager, talks TLS
with verification to MySQL and Redis, and calls AWS with its role's credentials through the IAM gateway,
which allows what the role allows (localdev/iam.py). Only endpoints come from here (`LocalEndpoints`):
where MySQL, Redis and the AWS APIs listen on this machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from couponcore import metrics
from couponcore.config import Settings
from localdev.account import LocalAccount, provision, role_arn
from localdev.environment import LOCAL_CA, use_local_defaults
from localdev.events import schedule_event
from localdev.gateway import HttpApiGateway
from localdev.iam import (
    AccountPolicies,
    IamGateway,
    account_policies,
    role_credentials,
    role_names,
    transformed_template,
    unused_permissions,
)
from localdev.metrics_sink import PrometheusSink
from localdev.runtime import LambdaRuntime
from localdev.sqs_local import Poller, sqs_client
from localdev.template import FunctionConfig, Intrinsics, Template

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("localdev.stack")

# Where MySQL and Redis listen on this machine: the developer's environment says (localdev/environment.py).
ENDPOINTS = ("DB_HOST", "DB_PORT", "REDIS_HOST", "REDIS_PORT")
# Taken from this process's environment when set (tests use their own database and Redis db).
ENDPOINT_OVERRIDES = ("DB_NAME", "REDIS_DB")


@dataclass(frozen=True)
class LocalEndpoints:
    values: Mapping[str, str]

    @classmethod
    def from_env(cls, aws_endpoint: str, env: Mapping[str, str] = os.environ) -> LocalEndpoints:
        values = {name: env[name] for name in ENDPOINTS}
        values.update({name: env[name] for name in ENDPOINT_OVERRIDES if env.get(name)})
        # The IAM gateway, over TLS with a certificate of the local CA (botocore verifies it).
        values.update(AWS_ENDPOINT_URL=aws_endpoint, AWS_CA_BUNDLE=str(LOCAL_CA))
        return cls(values)


CONTAINER_MB = 150  # a warm container's resident memory is about 100 MB: a margin for the rest


def containers_this_machine_holds() -> int:
    """As many containers as the available memory holds (16 to 256)."""
    try:
        with open("/proc/meminfo") as meminfo:
            available_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return 64
    return max(16, min(256, available_kb // 1024 // CONTAINER_MB))


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    # dev: the gateway verifies no token and the functions trust the body's userId (REQUIRE_IDENTITY off).
    auth: str = "jwt"
    # The account's concurrency, as in AWS (1,000 by default); reserved concurrency comes out of it.
    account_concurrency: int = 1000
    # How many containers this machine runs at once; past it invocations wait for room (never throttled).
    max_containers: int = field(default_factory=containers_this_machine_holds)
    idle_timeout_s: float = 600.0
    workers: bool = True  # the SQS event source mapping and the schedules
    # Where the IAM gateway forwards each AWS service's calls (default: AWS_ENDPOINT_URL); the fault suite
    # puts a proxy of its own in front of Secrets Manager.
    aws_upstreams: Mapping[str, str] = field(default_factory=dict)
    schedule_every_s: float | None = None  # None: the template's rate
    # Parameter values over the local parameter set's, as another parameter file would give them.
    parameters: Mapping[str, str] = field(default_factory=dict)
    # Functions whose code is another's (code directory, handler), configured as the template says in every
    # other way: the benchmark's bare handlers (bench/bare/).
    code: Mapping[str, tuple[Path, str]] = field(default_factory=dict)


class XRaySink(asyncio.DatagramProtocol):
    """Where traced functions send their segments (the X-Ray daemon's place in Lambda); counted, dropped."""

    def __init__(self) -> None:
        self.segments = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.segments += 1


class LocalDeployment:
    def __init__(self, template_path: Path = ROOT / "template.yaml", options: StackOptions | None = None) -> None:
        use_local_defaults()
        self.options = options or StackOptions()
        self.template_path = template_path
        self.template = Template(template_path)  # deployed into the local account by start()
        for name, (code_dir, handler) in self.options.code.items():
            self.template.functions[name] = replace(self.template.functions[name], code_dir=code_dir, handler=handler)
        self.account: LocalAccount | None = None
        self.policies: AccountPolicies | None = None
        self.aws: IamGateway | None = None
        self.sink = PrometheusSink()
        self.xray = XRaySink()
        self._xray_address = ""
        self.runtime = LambdaRuntime(
            self.template.functions,
            self.environment,
            account_concurrency=self.options.account_concurrency,
            max_containers=self.options.max_containers,
            idle_timeout_s=self.options.idle_timeout_s,
            on_metrics=self.sink.record,
            on_report=self.sink.report,
        )
        self.sink.watch(self.runtime)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: Poller | None = None
        self._background: list[asyncio.Task[None]] = []
        self._stop = threading.Event()

    def environment(self, config: FunctionConfig) -> dict[str, str]:
        """A container's environment: the template's, the local endpoints, its role's credentials, and what
        Lambda itself sets."""
        assert self.policies is not None, "deploy() first (start() does)"
        deployed = self.template.functions[config.name].environment
        template = {k: v for k, v in deployed.items() if v is not None}
        env = {**template, **LocalEndpoints.from_env(self.aws.url if self.aws else "").values}
        env.update(role_credentials(self.policies.function_roles[config.name]))
        if self.options.auth == "dev":
            env["REQUIRE_IDENTITY"] = "false"
        if config.tracing:
            env.update(AWS_XRAY_DAEMON_ADDRESS=self._xray_address, AWS_XRAY_CONTEXT_MISSING="LOG_ERROR")
        env.update(
            PATH=os.environ.get("PATH", "/usr/bin:/bin"),
            LANG="en_US.UTF-8",
            TZ=":UTC",
            # Lambda's sys.path: the function's code, then each layer's python/ (here the layer's source).
            PYTHONPATH=os.pathsep.join([str(config.code_dir), *(str(d) for d in config.layer_dirs)]),
            LAMBDA_TASK_ROOT=str(config.code_dir),
            _HANDLER=config.handler,
            AWS_EXECUTION_ENV=f"AWS_Lambda_{config.runtime}",
            AWS_LAMBDA_FUNCTION_NAME=config.name,
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(config.memory_mb),
            AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{config.name}",
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
        )
        return env

    def deploy(self, account: LocalAccount | None = None) -> None:
        """What `sam deploy` does, into the local account: its resources (made or found), the template's
        values resolved against them, the roles as the SAM transform writes them."""
        if account is None:
            queue_name = os.environ.get("ISSUE_QUEUE_NAME", "coupon-issue")
            account = provision(self.template, queue_name, Settings.from_env())
        self.account = account
        chosen = {**self.account.parameters, **self.options.parameters}
        parameters = {**self.template.parameters, **chosen}
        transformed = transformed_template(self.template_path, parameters)
        physical = dict(self.account.physical)
        for role in role_names(transformed):
            physical[f"{role}.Arn"] = role_arn(role)
        self.template = Template(self.template_path, chosen, physical)
        self.policies = account_policies(transformed, Intrinsics(transformed, parameters, physical))

    # ---- lifecycle (inside the event loop) ----

    async def start_functions(self) -> None:
        """The Lambda runtime alone, deployed: the account, the IAM gateway, and the X-Ray daemon's stand-in
        its traced functions send to."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self.deploy)
        assert self.policies is not None
        tls = LOCAL_CA.parent
        upstreams = {"*": os.environ["AWS_ENDPOINT_URL"], **self.options.aws_upstreams}
        self.aws = IamGateway(self.policies, upstreams, tls / "server.pem", tls / "server-key.pem")
        await self.aws.start()
        transport, _ = await self._loop.create_datagram_endpoint(lambda: self.xray, local_addr=("127.0.0.1", 0))
        host, port = transport.get_extra_info("sockname")[:2]
        self._xray_address = f"{host}:{port}"
        await self.runtime.start()

    async def start(self) -> None:
        await self.start_functions()
        assert self._loop is not None
        if self.options.workers:
            await self._loop.run_in_executor(None, self._start_queue_consumer)
            for schedule in self.template.schedules:
                every = self.options.schedule_every_s or schedule.every_s
                self._background.append(asyncio.create_task(self._run_schedule(schedule.function, every)))
        gateway = HttpApiGateway(
            self.template, self.runtime, self.sink, verify_tokens=self.options.auth != "dev", aws_audit=self.aws_audit
        )
        self._runner = web.AppRunner(gateway.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.options.host, self.options.port, backlog=1024).start()
        for route in self.template.routes:
            log.info("route %-7s %-40s -> %s", route.method, route.path, route.function)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._background:
            task.cancel()
        if self._poller:
            await asyncio.get_running_loop().run_in_executor(None, self._poller.stop)
        if self._runner:
            await self._runner.cleanup()
        await self.runtime.stop()
        if self.aws:
            await self.aws.stop()

    def aws_audit(self) -> dict[str, Any]:
        """The account, the calls the functions made, and what the roles allow that no call used yet."""
        assert self.account is not None and self.aws is not None and self.policies is not None
        calls = self.aws.record()
        functions = set(self.policies.function_roles.values())
        return {
            "gateway": self.aws.url,
            "account": {"physical": self.account.physical, "parameters": self.account.parameters},
            "calls": calls,
            "unused": unused_permissions(self.policies, calls, sorted(functions)),
        }

    @property
    def aws_url(self) -> str:
        assert self.aws is not None
        return self.aws.url

    def invoke_blocking(self, function: str, event: Any) -> Any:
        """Invoke from another thread (the SQS poller, a test): waits for the invocation's answer."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(self.runtime.invoke(function, event), self._loop).result()

    def _start_queue_consumer(self) -> None:
        """The event source mapping: it polls with the consuming function's role, as Lambda does."""
        assert self.account is not None and self.aws is not None and self.policies is not None
        mapping = self.template.queue_mapping
        queue_url, dlq_url = self.account.queue_url, self.account.dead_letter_url
        role = role_credentials(self.policies.function_roles[mapping.function])
        self._poller = Poller(
            queue_url,
            mapping,
            lambda event: self.invoke_blocking(mapping.function, event),
            lambda: sqs_client(self.aws_url, role, str(LOCAL_CA)),
        ).start()
        log.info(
            "SQS %s feeds %s: batch %d, window %.1f s, %d in flight",
            queue_url,
            mapping.function,
            mapping.batch_size,
            mapping.batching_window_s,
            mapping.max_concurrency,
        )
        threading.Thread(target=self._watch_queues, args=(queue_url, dlq_url), daemon=True).start()

    def _watch_queues(self, queue_url: str, dlq_url: str | None) -> None:
        """Queue depth and dead letters as gauges (in AWS, CloudWatch's own SQS metrics show them)."""
        sqs = sqs_client()
        while not self._stop.wait(5.0):
            try:
                for spec, url in ((metrics.QUEUE_MESSAGES, queue_url), (metrics.DLQ_MESSAGES, dlq_url)):
                    if url:
                        attributes = sqs.get_queue_attributes(
                            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                        )
                        self.sink.apply(spec, float(attributes["Attributes"]["ApproximateNumberOfMessages"]), {})
            except Exception:
                log.warning("queue depth not read", exc_info=True)

    async def _run_schedule(self, function: str, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                report = await self.runtime.invoke(function, schedule_event(f"{function}-rate"))
                if isinstance(report, dict) and any(
                    report.get(k) for k in ("resent", "missingSeats", "recounted", "confirmed")
                ):
                    log.info("%s: %s", function, report)
            except Exception as error:
                log.warning("scheduled %s failed: %s", function, error)


class BackgroundStack:
    """The stack on an event loop of its own thread, for tests and benchmarks."""

    def __init__(self, stack: LocalDeployment) -> None:
        self.stack = stack
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-stack", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.stack.options.host}:{self.stack.options.port}"

    def start(self) -> BackgroundStack:
        self._thread.start()
        self._call(self.stack.start()).result(timeout=60)
        return self

    def stop(self) -> None:
        self._call(self.stack.stop()).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def invoke(self, function: str, event: Any) -> Any:
        return self.stack.invoke_blocking(function, event)

    def warm(self, function: str, containers: int) -> None:
        """`containers` warm containers of the function, as provisioned concurrency keeps them."""
        self._call(self.stack.runtime.provision(function, containers)).result(timeout=300)

    def recycle(self) -> None:
        """Every container retired (busy ones when done): what comes next starts cold."""
        self._call(self.stack.runtime.recycle()).result(timeout=60)

    def settle(self, timeout_s: float = 30.0) -> None:
        """Waits for the invocations still running (those whose client has gone) to finish."""
        self._call(self.stack.runtime.settled(timeout_s)).result(timeout=timeout_s + 5)

    def _call(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)


def install_uvloop() -> None:
    """uvloop's event loop where it is installed (uvicorn[standard] brings it): the gateway's I/O is cheaper."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
