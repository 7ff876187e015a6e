"""A deploy rehearsal: template.yaml transformed by SAM and checked under every documented parameter set
(deploy/parameter-sets/*.json) for what CloudFormation and the services refuse and cfn-lint does not see.

    python -m localdev.rehearsal [--built .aws-sam/build] [--set new-account ...]

Per set:
- the SAM transform succeeds (what `sam deploy` sends CloudFormation);
- reserved concurrency adds up: Lambda keeps 100 of the account's quota (the set's accountConcurrency)
  unreserved;
- ElastiCache users and user groups follow each engine's rules (Redis OSS: a user named default in every
  group; Valkey: every user authenticates; one engine per group);
- every secret and queue a function names is readable or writable by its role, the event source mapping
  can consume its queue, the proxy can read its secrets (evaluated with the same policy simulator as the
  local IAM gateway), and nobody else may send to the issue queue;
- each function's cold path, every wait at its worst and with the guards the code applies, ends inside
  its Timeout;
- with --built, the layer sam build made ships the CA bundle DbCaBundle names.
Prints a line per set and check; exits non-zero with every problem found.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from couponcore.adapters.aws import SECRET_FOLLOW_UP_S, worst_call_s
from couponcore.config import Settings
from couponcore.services.async_issue import MARGIN_S
from localdev.iam import PolicySimulator, account_policies, transformed_template
from localdev.runtime import UNRESERVED_MINIMUM
from localdev.template import PARAMETER_SETS, PSEUDO_PARAMETERS, Intrinsics, Template, parameter_set

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = PSEUDO_PARAMETERS["AWS::AccountId"]
REGION = PSEUDO_PARAMETERS["AWS::Region"]
# What each function does with the queues its environment names (its code: adapters/sqs_queue.py).
QUEUE_USE = {
    "IssueAsyncFunction": [("sqs:SendMessage", "ISSUE_QUEUE_URL")],
    "ReconcileFunction": [("sqs:SendMessage", "ISSUE_QUEUE_URL")],
    "OpsFunction": [("sqs:GetQueueAttributes", "ISSUE_QUEUE_URL")],
    "BatchPersistFunction": [("sqs:SendMessage", "DEAD_LETTER_QUEUE_URL")],
}
# What the event source mapping does with the consuming function's role.
MAPPING_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
ANSWER_MARGIN_S = 0.5  # building and sending the answer


def placeholders(resources: dict[str, Any]) -> dict[str, Any]:
    """Physical ids a deploy would give the resources, in the shapes AWS gives them."""
    physical: dict[str, Any] = {}
    for name, resource in resources.items():
        kind = resource["Type"]
        if kind == "AWS::SQS::Queue":
            physical.update(
                {
                    name: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/coupon-dev-{name}",
                    f"{name}.Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:coupon-dev-{name}",
                    f"{name}.QueueName": f"coupon-dev-{name}",
                }
            )
        elif kind == "AWS::SecretsManager::Secret":
            physical[name] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:coupon-dev-{name}-AbCdEf"
        elif kind == "AWS::IAM::Role":
            physical[f"{name}.Arn"] = f"arn:aws:iam::{ACCOUNT}:role/coupon-dev-{name}"
        else:
            physical[name] = f"coupon-dev-{name}"
    return physical


@dataclass
class Deployment:
    """One parameter set's stack, as CloudFormation would create it."""

    name: str
    quota: int
    parameters: dict[str, Any]
    transformed: dict[str, Any]
    intrinsics: Intrinsics
    created: dict[str, Any]  # logical id -> resource, resolved, those whose condition holds
    physical: dict[str, Any]  # what a deploy would name each resource (placeholders)
    template_path: Path

    @classmethod
    def of(cls, name: str, template_path: Path = TEMPLATE) -> Deployment:
        documented = parameter_set(name)
        parameters = documented["parameters"]
        transformed = transformed_template(template_path, parameters)
        physical = placeholders(transformed["Resources"])
        intrinsics = Intrinsics(transformed, parameters, physical)
        created = {
            logical_id: intrinsics.resolve(copy.deepcopy(resource))
            for logical_id, resource in transformed["Resources"].items()
            if "Condition" not in resource or intrinsics.condition(resource["Condition"])
        }
        quota = int(documented["accountConcurrency"])
        return cls(name, quota, parameters, transformed, intrinsics, created, physical, template_path)

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r.get("Properties", {}) for name, r in self.created.items() if r["Type"] == kind}


# ---- the checks: each returns the problems it found ----


def reserved_concurrency(deployment: Deployment) -> list[str]:
    reserved = {
        name: int(p["ReservedConcurrentExecutions"])
        for name, p in deployment.of_type("AWS::Lambda::Function").items()
        if "ReservedConcurrentExecutions" in p
    }
    total = sum(reserved.values())
    if total and deployment.quota - total < UNRESERVED_MINIMUM:
        return [
            f"reserved concurrency {total} leaves {deployment.quota - total} of the account's {deployment.quota} "
            f"unreserved (Lambda keeps {UNRESERVED_MINIMUM}): CloudFormation refuses the stack"
        ]
    return []


def elasticache_users(deployment: Deployment) -> list[str]:
    problems = []
    users = deployment.of_type("AWS::ElastiCache::User")
    caches = deployment.of_type("AWS::ElastiCache::ServerlessCache")
    for group_name, group in deployment.of_type("AWS::ElastiCache::UserGroup").items():
        engine = group["Engine"]
        members = [users.get(str(user_id).removeprefix("coupon-dev-")) for user_id in group["UserIds"]]
        if any(member is None for member in members):
            problems.append(f"{group_name}: a user id names no user this stack creates")
            continue
        if any(member["Engine"] != engine for member in members if member):
            problems.append(f"{group_name}: its users' engine differs from the group's ({engine})")
        if engine == "redis" and not any(member["UserName"] == "default" for member in members if member):
            problems.append(f"{group_name}: a Redis OSS user group must hold a user named default")
        if engine == "valkey" and any(
            member["AuthenticationMode"]["Type"] == "no-password-required" for member in members if member
        ):
            problems.append(f"{group_name}: Valkey users must authenticate (password or IAM)")
    for cache_name, cache in caches.items():
        groups = deployment.of_type("AWS::ElastiCache::UserGroup")
        its_group = groups.get(str(cache.get("UserGroupId", "")).removeprefix("coupon-dev-"))
        if its_group and its_group["Engine"] != cache["Engine"]:
            problems.append(f"{cache_name}: engine {cache['Engine']} but its user group's is {its_group['Engine']}")
    return problems


def permissions(deployment: Deployment, simulator: PolicySimulator) -> list[str]:
    policies = account_policies(deployment.transformed, deployment.intrinsics)
    problems = []

    def allowed(role_id: str, action: str, resource: str) -> bool:
        role = policies.roles[role_id]
        decision = simulator.decide(
            {
                "principal": role.arn,
                "action": action,
                "resource": resource,
                "account": ACCOUNT,
                "identityPolicies": role.policies,
                "resourcePolicy": policies.resource_policies.get(resource),
                "context": {"aws:SecureTransport": "true"},
            }
        )
        return decision.allowed

    for name, function in deployment.of_type("AWS::Lambda::Function").items():
        role_id = policies.function_roles[name]
        variables = function.get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            if (
                variable.endswith("_SECRET_ARN")
                and value
                and not allowed(role_id, "secretsmanager:GetSecretValue", value)
            ):
                problems.append(f"{name}: its role may not read {variable} ({value})")
        for action, variable in QUEUE_USE.get(name, []):
            queue = queue_arn_of(deployment, variables.get(variable))
            if queue is None or not allowed(role_id, action, queue):
                problems.append(f"{name}: its role may not {action} on {variable} ({queue})")
    for mapping in deployment.of_type("AWS::Lambda::EventSourceMapping").values():
        consumer = str(mapping["FunctionName"]).removeprefix("coupon-dev-")
        role_id = policies.function_roles[consumer]
        for action in MAPPING_ACTIONS:
            if not allowed(role_id, action, mapping["EventSourceArn"]):
                problems.append(f"{consumer}: its event source mapping may not {action} on its queue")
    for proxy_name, proxy in deployment.of_type("AWS::RDS::DBProxy").items():
        for auth in proxy["Auth"]:
            role_id = "DbProxyRole"
            if not allowed(role_id, "secretsmanager:GetSecretValue", auth["SecretArn"]):
                problems.append(f"{proxy_name}: its role may not read {auth['SecretArn']}")
    stranger = f"arn:aws:iam::{ACCOUNT}:role/someone-with-sqs-full-access"
    issue_queue = str(deployment.physical["IssueQueue.Arn"])
    decision = simulator.decide(
        {
            "principal": stranger,
            "action": "sqs:SendMessage",
            "resource": issue_queue,
            "account": ACCOUNT,
            "identityPolicies": [
                {"name": "full", "policy": {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}}
            ],
            "resourcePolicy": policies.resource_policies.get(issue_queue),
            "context": {"aws:SecureTransport": "true"},
        }
    )
    if decision.result != "ExplicitlyDenied":
        problems.append(f"IssueQueue: a role outside the service may send to it ({decision.result})")
    return problems


def queue_arn_of(deployment: Deployment, url: Any) -> str | None:
    for name in deployment.of_type("AWS::SQS::Queue"):
        if deployment.physical[name] == url:
            return str(deployment.physical[f"{name}.Arn"])
    return None


# ---- the cold path: every wait at its worst, the code's guards applied ----


@dataclass(frozen=True)
class Step:
    what: str
    seconds: float  # its worst case
    guard_s: float | None = None  # the code starts it only with this much of the invocation left


def cold_paths(settings: Settings) -> dict[str, list[Step]]:
    """Each function's longest first invocation, in the order the code waits (the guards are the
    time_budget.require calls, the async service's after_reserve_s and the cache refresh's)."""
    secret = worst_call_s(settings.secrets_timeout_s)
    secret_step = {"seconds": secret, "guard_s": secret + SECRET_FOLLOW_UP_S}
    statement = settings.statement_timeout_s
    connect = {"seconds": settings.db_connect_timeout_s, "guard_s": settings.db_connect_timeout_s + statement}
    redis = settings.redis_timeout_s
    send = worst_call_s(settings.sqs_timeout_s)
    refresh = statement + secret + 3 * redis
    mysql = [Step("MySQL secret", **secret_step), Step("MySQL connect", **connect), Step("statement", statement)]
    redis_open = [Step("Redis secret", **secret_step), Step("Redis connect", redis)]
    after_reserve = send + redis + MARGIN_S
    # With the front door, an HTTP function's first request reads the header's secret before anything else.
    front_door = [Step("origin secret", **secret_step)] if settings.origin_verify_secret_arn else []
    return {
        "IssueSyncFunction": [
            *front_door,
            *redis_open,
            Step("fair share", redis),
            *mysql,
            Step("cache refresh after a sell-out", refresh, refresh),
        ],
        "IssueAsyncFunction": [
            *front_door,
            *redis_open,
            Step("fair share", redis),
            Step("idempotency record", redis),
            Step("cached coupon", redis),
            *mysql,  # a cache miss: the coupon from MySQL
            Step("cache fill", redis),
            Step("signing key", **secret_step),
            Step("reservation script", redis),
            Step("send, or give the seat back", send + redis, after_reserve),
        ],
        "CouponsFunction": [*front_door, *redis_open, Step("status", redis), *mysql, Step("remember the issue", redis)],
        # A redemption: the coupon's terms, the issue's mark, the write; a missing row asks Redis why.
        "WalletFunction": [
            *front_door,
            *mysql,
            *redis_open,
            Step("mark the issue", redis),
            Step("redeem", statement),
            Step("reservation on its way?", redis),
        ],
        "BatchPersistFunction": [
            Step("signing key", **secret_step),
            *mysql,
            Step("batch insert", statement),
            *redis_open,
            Step("confirm in Redis", redis),
            Step("forgery to the dead letters", send),
        ],
        "ReconcileFunction": [*mysql, *redis_open, Step("signing key", **secret_step), Step("resend", send)],
        "MigrateFunction": [*mysql, Step("runtime user's secret", **secret_step), Step("migrations", 60)],
        # The health probes run at once, each given 2 s (services/health.py).
        "OpsFunction": [*front_door, Step("probes, at once", 2.0)],
    }


def finishes_by(steps: list[Step], timeout_s: float) -> float:
    elapsed = 0.0
    for step in steps:
        if step.guard_s is not None and timeout_s - elapsed < step.guard_s:
            break  # refused: the client hears 503 now
        elapsed += step.seconds
    return elapsed + ANSWER_MARGIN_S


def cold_path_fits(deployment: Deployment) -> list[str]:
    template = Template(deployment.template_path, deployment.parameters)
    problems = []
    for name, config in template.functions.items():
        settings = Settings.from_env({k: v for k, v in config.environment.items() if v and not k.endswith("_CA")})
        steps = cold_paths(settings).get(name)
        if steps is None:
            problems.append(f"{name}: no cold path is modelled for it (localdev/rehearsal.py)")
            continue
        ends = finishes_by(steps, config.timeout_s)
        if ends > config.timeout_s:
            problems.append(f"{name}: its cold path can take {ends:.1f} s, past its {config.timeout_s:.0f} s Timeout")
    return problems


def layer_ships_the_bundle(deployment: Deployment, built: Path) -> list[str]:
    bundle = str(deployment.intrinsics.resolve({"Ref": "DbCaBundle"}))
    shipped = built / "CouponCoreLayer" / bundle.removeprefix("/opt/")
    if not bundle.startswith("/opt/") or not shipped.is_file() or "BEGIN CERTIFICATE" not in shipped.read_text():
        return [f"DbCaBundle={bundle}: the built layer has no certificate bundle there ({shipped})"]
    return []


CHECKS: dict[str, Callable[[Deployment], list[str]]] = {
    "reserved concurrency within the account's quota": reserved_concurrency,
    "ElastiCache users and groups": elasticache_users,
    "cold path inside each Timeout": cold_path_fits,
}


def rehearse(names: list[str], built: Path | None, template_path: Path = TEMPLATE) -> list[str]:
    simulator = PolicySimulator()
    problems = []
    try:
        for name in names:
            try:
                deployment = Deployment.of(name, template_path)
            except Exception as error:  # the transform refused it: what sam deploy would answer
                problems.append(f"{name}: SAM transform failed: {error}")
                continue
            checks: dict[str, Callable[[Deployment], list[str]]] = {
                **CHECKS,
                "roles may do what the functions do": lambda d: permissions(d, simulator),
            }
            if built is not None:
                checks["the layer ships DbCaBundle"] = lambda d: layer_ships_the_bundle(d, built)
            for label, check in checks.items():
                found = check(deployment)
                print(f"[rehearsal] {name}: {label}: {'ok' if not found else 'FAILED'}")
                problems += [f"{name}: {problem}" for problem in found]
    finally:
        simulator.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--built", type=Path, help="sam build's output folder, to check what the layer ships")
    parser.add_argument("--set", action="append", help="one parameter set (default: every one documented)")
    args = parser.parse_args()
    names = args.set or sorted(path.stem for path in PARAMETER_SETS.glob("*.json"))
    problems = rehearse(names, args.built)
    for problem in problems:
        print(f"[rehearsal] PROBLEM {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"[rehearsal] {len(names)} parameter sets would deploy")


if __name__ == "__main__":
    main()
