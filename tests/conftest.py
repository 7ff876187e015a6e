"""Test-wide set-up: a dedicated database, Redis db and queue in the local account, migrated once per session."""

from __future__ import annotations

import os
import uuid

from localdev.environment import LOCAL_DEFAULTS

# Before anything imports couponcore: tests never touch the development database or queue.
os.environ.update({**LOCAL_DEFAULTS, **os.environ})
os.environ.setdefault("ISSUE_QUEUE_NAME", f"coupon-test-{uuid.uuid4().hex[:12]}")
os.environ.setdefault("DB_NAME", "coupon_test")
os.environ.setdefault("REDIS_DB", "15")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
# The service-level concurrency tests run up to 200 calls at once in this process. (The functions in the
# local Lambda runtime get the template's own pool of one connection.)
os.environ.setdefault("DB_POOL_SIZE", "50")
os.environ.setdefault("DB_MAX_OVERFLOW", "200")
os.environ.setdefault("DB_LOCK_WAIT_TIMEOUT_S", "10")
os.environ.setdefault("REDIS_MAX_CONNECTIONS", "256")
os.environ.setdefault("LOCK_WAIT_S", "10")

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from couponcore import bootstrap
from couponcore.config import Settings
from localdev.account import LocalAccount, provision
from localdev.migrate import deploy_database
from localdev.sqs_local import Poller, create_queues, sqs_client
from localdev.stack import BackgroundStack, LocalDeployment, StackOptions
from localdev.template import Template
from tests.support.metrics import EmittedMetrics
from tests.support.network import free_port
from tests.support.sqs import QueuePair

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def local_account(settings: Settings, sqs_endpoint: str) -> LocalAccount:
    """The local account (queues, secrets, cache user), as the local stack deploys into it. Handlers run in
    this process sign and check reservations with its key, as the deployed functions do."""
    account = provision(Template(TEMPLATE), os.environ["ISSUE_QUEUE_NAME"], settings)
    os.environ["SIGNING_SECRET_ARN"] = account.secret("MessageSigningSecret")
    return account


@pytest.fixture(scope="session")
def migrated_database(settings: Settings, local_account: LocalAccount) -> Settings:
    """Drop and re-create the test database from the migrations: the schema under test is the migrated one,
    and the service's MySQL user is the one the migrations create."""
    deploy_database(settings, os.environ["ISSUE_QUEUE_NAME"], fresh=True)
    return settings


@pytest.fixture
def clean_state(migrated_database: Settings) -> Iterator[None]:
    """Empty tables and Redis db, fresh clients: each test starts as a new container would."""
    bootstrap.reset()
    container = bootstrap.services()
    with container.adapters.engine.begin() as connection:
        # DELETE, not TRUNCATE: ids keep growing, so a warm function container never meets a reused id.
        for table in ("coupon_issues", "coupon_rejections", "coupons"):
            connection.execute(text(f"DELETE FROM {table}"))
    container.adapters.redis.flushdb()
    yield
    bootstrap.reset()


@pytest.fixture(scope="session")
def sqs_endpoint() -> str:
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    try:
        sqs_client(endpoint).list_queues()
    except Exception as error:
        pytest.fail(f"No SQS API answers on {endpoint} ({error!r}): start one with scripts/sqs_emulator.sh up")
    return endpoint


@pytest.fixture
def issue_queue(sqs_endpoint: str, clean_state: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[QueuePair]:
    """A fresh queue and DLQ for this test, with the template's redrive count and a 2 s visibility timeout."""
    settings = Template(TEMPLATE).queue_mapping
    url, dlq_url = create_queues(f"coupon-test-{uuid.uuid4().hex[:12]}", settings, sqs_endpoint, visibility_timeout_s=2)
    monkeypatch.setenv("ISSUE_QUEUE_URL", url)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
    bootstrap.reset()
    yield QueuePair(url, dlq_url, settings, sqs_endpoint)
    client = sqs_client(sqs_endpoint)
    for queue in (url, dlq_url):
        client.delete_queue(QueueUrl=queue)


@pytest.fixture(scope="session")
def lambda_runtime(migrated_database: Settings, sqs_endpoint: str) -> Iterator[BackgroundStack]:
    """The template's functions on the local Lambda runtime (no HTTP routes used, no workers of its own)."""
    stack = BackgroundStack(LocalDeployment(TEMPLATE, StackOptions(port=free_port(), workers=False))).start()
    yield stack
    stack.stop()


@pytest.fixture
def poller(issue_queue: QueuePair, lambda_runtime: BackgroundStack) -> Iterator[Poller]:
    """batch_persist, in its own containers, fed from the test's queue as the event source mapping says."""
    function = issue_queue.settings.function
    running = Poller(
        issue_queue.url, issue_queue.settings, lambda event: lambda_runtime.invoke(function, event)
    ).start()
    yield running
    running.stop()


@pytest.fixture
def emitted(capsys: pytest.CaptureFixture[str]) -> EmittedMetrics:
    """Metrics emitted from now on (EMF on stdout), readable as Prometheus samples."""
    capsys.readouterr()
    return EmittedMetrics(capsys)
