"""The AWS account the local stack deploys into, made real on this machine.

What `sam deploy` would create (the issue queue and its dead-letter queue, the service's MySQL secret, the
key that signs reservations), what a user brings to a deploy (the MySQL admin's secret, the cache user's
secret, the cache's ACL user), and an identity for each role, all on the local emulators and servers.
Everything is created once and found again afterwards, so every process of a run (the stack, the tests,
the tools) sees one account. Only a tool of the developer's (the `test` keys) talks to it directly; the
functions reach it through the IAM gateway, with their role's credentials (localdev/iam.py).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

import boto3

from couponcore.adapters.redis_client import create_redis
from couponcore.config import Settings
from localdev.environment import LOCAL_CA
from localdev.sqs_local import REGION, create_queues, sqs_client
from localdev.template import Template

ACCOUNT_ID = "000000000000"
STACK = "coupon-local"
# The ACL of the service's cache user, as CacheServiceUser gives it in AWS: everything but the dangerous
# commands (FLUSHALL, KEYS, CONFIG, DEBUG, ...).
CACHE_USER_ACL = ("~*", "&*", "+@all", "-@dangerous")


def role_arn(role: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{STACK}-{role}"


@dataclass(frozen=True)
class LocalAccount:
    # A resource's Ref ("IssueQueue") or attribute ("IssueQueue.Arn") -> its local value.
    physical: dict[str, Any]
    # The parameters whose values live in the account: the user's own secrets, the local CA bundles.
    parameters: dict[str, Any]

    @property
    def queue_url(self) -> str:
        return str(self.physical["IssueQueue"])

    @property
    def dead_letter_url(self) -> str:
        return str(self.physical["IssueDeadLetterQueue"])

    def secret(self, logical_id: str) -> str:
        """A secret's ARN, by the name the template gives it (a resource or a parameter)."""
        return str(self.physical.get(logical_id) or self.parameters[logical_id])


def secrets_client(endpoint: str | None = None) -> Any:
    return boto3.client(
        "secretsmanager", region_name=REGION, endpoint_url=endpoint or os.environ.get("AWS_ENDPOINT_URL")
    )


def ensure_secret(name: str, make_value: Any, endpoint: str | None = None) -> tuple[str, dict[str, Any]]:
    """The secret's ARN and value: created with make_value() unless it exists (another process may win)."""
    client = secrets_client(endpoint)
    try:
        found = client.get_secret_value(SecretId=name)
        return str(found["ARN"]), json.loads(found["SecretString"])
    except client.exceptions.ResourceNotFoundException:
        pass
    try:
        created = client.create_secret(Name=name, SecretString=json.dumps(make_value()))
        return str(created["ARN"]), json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    except client.exceptions.ResourceExistsException:
        found = client.get_secret_value(SecretId=name)
        return str(found["ARN"]), json.loads(found["SecretString"])


def ensure_cache_user(settings: Settings, username: str, password: str) -> None:
    """The cache's ACL user for the functions, as the operator creates it for an ElastiCache of theirs."""
    admin = create_redis(settings)
    try:
        admin.acl_setuser(  # type: ignore[no-untyped-call]
            username,
            enabled=True,
            reset_passwords=True,
            passwords=[f"+{password}"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-@dangerous"],
        )
    finally:
        admin.close()


def provision(template: Template, queue_name: str, settings: Settings, endpoint: str | None = None) -> LocalAccount:
    """Creates (or finds) what the template deploys and names: its queues and secrets, the user's secrets it
    takes as parameters, the cache user. ``settings`` is the developer's view of MySQL and Redis (admin
    rights), whose database names the service's MySQL user."""
    resources, declared = template.resources, template.document.get("Parameters", {})
    physical: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    if "IssueQueue" in resources:
        queue_url, dlq_url = create_queues(queue_name, template.queue_mapping, endpoint)
        sqs = sqs_client(endpoint)
        for logical_id, url in (("IssueQueue", queue_url), ("IssueDeadLetterQueue", dlq_url)):
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            physical.update(
                {logical_id: url, f"{logical_id}.Arn": arn, f"{logical_id}.QueueName": arn.rsplit(":", 1)[1]}
            )
    if "DbAdminSecretArn" in declared:
        parameters["DbAdminSecretArn"], _ = ensure_secret(
            f"{STACK}/db-admin", lambda: {"username": settings.db_user, "password": settings.db_password}, endpoint
        )
    if "DbRuntimeSecret" in resources:
        physical["DbRuntimeSecret"], _ = ensure_secret(
            f"{STACK}/db-runtime/{settings.db_name}",
            lambda: {"username": f"{settings.db_name}_app", "password": secrets.token_urlsafe(24)},
            endpoint,
        )
    if "RedisSecretArn" in declared:
        parameters["RedisSecretArn"], cache_user = ensure_secret(
            f"{STACK}/cache-user", lambda: {"username": STACK, "password": secrets.token_urlsafe(24)}, endpoint
        )
        ensure_cache_user(settings, cache_user["username"], cache_user["password"])
    if "MessageSigningSecret" in resources:
        physical["MessageSigningSecret"], _ = ensure_secret(
            f"{STACK}/signing-key", lambda: {"key": secrets.token_hex(32)}, endpoint
        )
    if "OriginVerifySecret" in resources:  # read only by a stack deployed with FrontDoor CloudFront
        physical["OriginVerifySecret"], _ = ensure_secret(
            f"{STACK}/origin-verify", lambda: {"value": secrets.token_urlsafe(36)}, endpoint
        )
    parameters.update({name: str(LOCAL_CA) for name in ("DbCaBundle", "RedisCaBundle") if name in declared})
    return LocalAccount(physical, parameters)
