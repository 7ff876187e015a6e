"""IAM as deployed, on the local stack.

The roles are the template's as the SAM transform writes them (samtranslator, what `sam deploy` runs),
their intrinsics resolved against the local account; resource policies (the issue queue's) likewise.
Each function gets its role's own credentials, as Lambda hands them out, and the AWS endpoint it is given
is the `IamGateway`: HTTPS with the local CA's certificate, which authorizes every call as AWS would (the
caller's role and the resource's policy, evaluated by @cloud-copilot/iam-simulate, a maintained
implementation of AWS's policy evaluation logic), records it, and only then forwards it to the emulator.
A call the role does not allow is answered AccessDenied, as in AWS.

Why that evaluator: moto's access control (the other candidate) matches actions and resources but
treats an Allow whose condition does not hold as a Deny and knows only StringEquals; the queue policy
here rests on ArnNotEquals and Bool conditions. It runs under Node.js (localdev/iam_simulator).
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
from aiohttp import web

from localdev.account import ACCOUNT_ID, role_arn
from localdev.template import Intrinsics, load_template

log = logging.getLogger("localdev.iam")
SIMULATOR = Path(__file__).resolve().parent / "iam_simulator"
REGION = "us-east-1"
# The developer's own keys (tools, tests): an administrator, not evaluated.
DEVELOPER_KEYS = frozenset({"test"})
# Batch operations are authorized as their single form.
BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


# ---- the roles, as the SAM transform writes them ----


def transformed_template(template_path: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """The template after AWS::Serverless-2016-10-31, as CloudFormation receives it from `sam deploy`."""
    from samtranslator.translator.transform import transform

    document = load_template(template_path)
    for resource in document.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):  # what `sam package` puts there
                properties[key] = f"s3://coupon-artifacts/{properties[key].strip('/')}"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the transform names the region in ARNs
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)  # its own usage metrics, unsent
    return dict(transform(document, dict(parameters), NoManagedPolicies()))


@dataclass(frozen=True)
class Role:
    logical_id: str
    arn: str
    # Inline policies, resolved: [{"name": ..., "policy": {...}}]; managed ones (logs, ENIs, X-Ray: what the
    # Lambda service does with the role) are not the functions' calls.
    policies: list[dict[str, Any]]

    def statements(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for policy in self.policies:
            for index, statement in enumerate(_listed(policy["policy"]["Statement"]), start=1):
                yield f"{policy['name']}#{statement.get('Sid', index)}", statement  # as the simulator names it


@dataclass(frozen=True)
class AccountPolicies:
    roles: dict[str, Role]  # role logical id -> role
    function_roles: dict[str, str]  # function logical id -> role logical id
    resource_policies: dict[str, dict[str, Any]]  # resource ARN -> policy document

    def role_of(self, function: str) -> Role:
        return self.roles[self.function_roles[function]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_names(transformed: dict[str, Any]) -> list[str]:
    return [name for name, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role"]


def account_policies(transformed: dict[str, Any], intrinsics: Intrinsics) -> AccountPolicies:
    resources = transformed["Resources"]
    roles = {}
    for name in role_names(transformed):
        properties = resources[name]["Properties"]
        policies = [
            {"name": p["PolicyName"], "policy": p["PolicyDocument"]}
            for p in intrinsics.resolve(copy.deepcopy(properties.get("Policies", [])))
        ]
        arn = intrinsics.resolve({"Fn::GetAtt": [name, "Arn"]}) or role_arn(name)
        roles[name] = Role(name, str(arn), policies)
    function_roles = {}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]["Fn::GetAtt"]
            function_roles[name] = role[0] if isinstance(role, list) else str(role).split(".")[0]
    resource_policies: dict[str, dict[str, Any]] = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            document = intrinsics.resolve(copy.deepcopy(resource["Properties"]["PolicyDocument"]))
            for queue_url in intrinsics.resolve(resource["Properties"]["Queues"]):
                resource_policies[queue_arn(str(queue_url))] = document
    return AccountPolicies(roles, function_roles, resource_policies)


# ---- the evaluator ----


@dataclass(frozen=True)
class Decision:
    result: str  # Allowed, ImplicitlyDenied, ExplicitlyDenied, Invalid
    allowed_by: tuple[str, ...]  # "policy name#statement" of the statements that allowed it
    errors: Any = None

    @property
    def allowed(self) -> bool:
        return self.result == "Allowed"


class PolicySimulator:
    """One Node.js process of localdev/iam_simulator/evaluate.mjs; one JSON line in, one out. Decisions
    are cached: policies do not change while a stack runs."""

    def __init__(self) -> None:
        ensure_simulator_installed()
        self._process = subprocess.Popen(  # noqa: S603 - our own script
            [_tool("node"), str(SIMULATOR / "evaluate.mjs")],
            cwd=SIMULATOR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        self._cache: dict[str, Decision] = {}

    def decide(self, request: dict[str, Any]) -> Decision:
        key = json.dumps(request, sort_keys=True)
        with self._lock:
            if key not in self._cache:
                assert self._process.stdin is not None and self._process.stdout is not None
                self._process.stdin.write(json.dumps(request) + "\n")
                answer = json.loads(self._process.stdout.readline() or '{"result": "Invalid"}')
                self._cache[key] = Decision(
                    answer["result"], tuple(answer.get("allowedBy") or ()), answer.get("errors")
                )
            return self._cache[key]

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def ensure_simulator_installed() -> None:
    if (SIMULATOR / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
        return
    log.info("installing the IAM policy evaluator (npm ci, once)")
    npm = [_tool("npm"), "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    subprocess.run(npm, cwd=SIMULATOR, check=True, capture_output=True)  # noqa: S603 - a fixed command


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is missing: scripts/services.sh iam installs Node.js")
    return found


# ---- what a call is ----


def queue_arn(queue_url: str) -> str:
    """arn:aws:sqs:region:account:name of a queue URL (/account/name or /queue/region/account/name)."""
    parts = [p for p in urlparse(queue_url).path.split("/") if p]
    return f"arn:aws:sqs:{REGION}:{parts[-2]}:{parts[-1]}"


def secret_arn(secret_id: str) -> str:
    return (
        secret_id
        if secret_id.startswith("arn:")
        else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{secret_id}"
    )


@dataclass(frozen=True)
class AwsCall:
    caller: str  # function logical id, or "developer"
    principal: str
    action: str  # sqs:SendMessage
    resource: str
    result: str
    allowed_by: tuple[str, ...] = field(default=())


def describe(headers: Any, body: bytes) -> tuple[str, str, str, str]:
    """(access key, service, operation, resource ARN) of a signed AWS API request."""
    credential = re.search(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    access_key, service = (credential.group(1), credential.group(2)) if credential else ("", "")
    target = headers.get("X-Amz-Target", "")
    if target:  # the JSON protocols: AmazonSQS.SendMessage, secretsmanager.GetSecretValue
        operation = target.rsplit(".", 1)[-1]
        payload = json.loads(body or b"{}")
    else:  # the query protocol
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        operation, payload = form.get("Action", ""), form
    if service == "sqs":
        resource = queue_arn(str(payload["QueueUrl"])) if "QueueUrl" in payload else "*"
    elif service == "secretsmanager":
        resource = secret_arn(str(payload["SecretId"])) if "SecretId" in payload else "*"
    else:
        resource = "*"
    return access_key, service, operation, resource


# ---- the gateway ----


class IamGateway:
    """The functions' AWS endpoint. Known role keys are authorized against their role; the developer's
    keys pass; anything else is refused."""

    def __init__(self, policies: AccountPolicies, upstreams: dict[str, str], certificate: Path, key: Path) -> None:
        """``upstreams``: the emulator's URL per service ("sqs", "secretsmanager"), "*" for the others."""
        self.policies = policies
        # Every distinct call (who, what, on what, the decision) and how often: a stack that runs for hours
        # polls its queue every second.
        self.calls: dict[AwsCall, int] = {}
        self._upstreams = {service: url.rstrip("/") for service, url in upstreams.items()}
        self._simulator = PolicySimulator()
        self._keys = {access_key(role): role for role in policies.roles}
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(certificate, key)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        listening = socket.socket()
        listening.bind((host, port))
        await web.SockSite(self._runner, listening, ssl_context=self._tls, backlog=1024).start()
        self.url = f"https://127.0.0.1:{listening.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()
        await asyncio.get_running_loop().run_in_executor(None, self._simulator.close)

    def authorize(self, access: str, service: str, operation: str, resource: str) -> AwsCall:
        action = f"{service}:{BATCH_ACTIONS.get(operation, operation)}"
        if access in DEVELOPER_KEYS:
            return AwsCall("developer", "developer", action, resource, "Allowed")
        role_id = self._keys.get(access)
        if role_id is None:
            return AwsCall("unknown", access, action, resource, "InvalidClientTokenId")
        role = self.policies.roles[role_id]
        decision = self._simulator.decide(
            {
                "principal": role.arn,
                "action": action,
                "resource": resource,
                "account": ACCOUNT_ID,
                "identityPolicies": role.policies,
                "resourcePolicy": self.policies.resource_policies.get(resource),
                "context": {"aws:SecureTransport": "true"},
            }
        )
        if decision.errors:
            log.warning("IAM simulation of %s on %s by %s: %s", action, resource, role_id, decision.errors)
        return AwsCall(role_id, role.arn, action, resource, decision.result, decision.allowed_by)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        access, service, operation, resource = describe(request.headers, body)
        loop = asyncio.get_running_loop()
        call = await loop.run_in_executor(None, self.authorize, access, service, operation, resource)
        if call.caller != "developer":
            self.calls[call] = self.calls.get(call, 0) + 1
        if call.result != "Allowed":
            return _access_denied(request.headers.get("X-Amz-Target", ""), call)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        base = self._upstreams.get(service, self._upstreams["*"])
        async with self._session.request(
            request.method, f"{base}{request.path_qs}", headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            passed = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date")
            }
            return web.Response(status=upstream.status, body=payload, headers=passed)

    def record(self) -> list[dict[str, Any]]:
        return [{**asdict(call), "count": count} for call, count in list(self.calls.items())]


def access_key(role: str) -> str:
    return f"ASIALOCAL{role.upper()}"


def role_credentials(role: str) -> dict[str, str]:
    """What Lambda puts in a container's environment for its role."""
    return {
        "AWS_ACCESS_KEY_ID": access_key(role),
        "AWS_SECRET_ACCESS_KEY": f"local-secret-of-{role}",
        "AWS_SESSION_TOKEN": f"local-session-of-{role}",
    }


def _access_denied(target: str, call: AwsCall) -> web.Response:
    message = f"User: {call.principal} is not authorized to perform: {call.action} on resource: {call.resource}"
    if target.startswith("AmazonSQS."):
        return web.json_response(
            {"__type": "com.amazon.coral.service#AccessDeniedException", "message": message},
            status=400,
            headers={"x-amzn-query-error": "AccessDenied;Sender"},
            content_type="application/x-amz-json-1.0",
        )
    return web.json_response(
        {"__type": "AccessDeniedException", "Message": message}, status=400, content_type="application/x-amz-json-1.1"
    )


# ---- least privilege: every allowed statement was needed ----


def unused_permissions(policies: AccountPolicies, calls: Iterable[dict[str, Any]], roles: Iterable[str]) -> list[str]:
    """Each (statement, action, resource) of the given roles' inline policies that no allowed call used."""
    allowed = [c for c in calls if c["result"] == "Allowed"]
    unused = []
    for role_id in roles:
        for statement_id, statement in policies.roles[role_id].statements():
            if statement.get("Effect") != "Allow":
                continue
            for action in _listed(statement.get("Action", [])):
                for resource in _listed(statement.get("Resource", "*")):
                    used = any(
                        c["caller"] == role_id
                        and statement_id in c["allowed_by"]
                        and fnmatch.fnmatchcase(c["action"], action)
                        and fnmatch.fnmatchcase(c["resource"], resource)
                        for c in allowed
                    )
                    if not used:
                        unused.append(f"{role_id}: {statement_id} {action} on {resource}")
    return unused
