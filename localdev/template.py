"""What the local runtime reads from template.yaml: functions, routes, the JWT authorizer, the SQS event
source mapping and the schedules, with the template's intrinsics resolved for a local stack.

Parameters are one of the documented parameter sets (deploy/parameter-sets/, the one named by
`LOCAL_PARAMETER_SET`), with the local account's own values where a set names account things (the JWT
issuer, the secrets a user brings, the CA bundles of the local servers); conditions are evaluated from
them. A resource's Ref or attribute resolves to what the local account made for it (a queue, a secret, a
role); what only exists in AWS (a proxy's endpoint) resolves to `None`: such values are endpoints, which
the runtime supplies itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

PARAMETER_SETS = Path(__file__).resolve().parent.parent / "deploy" / "parameter-sets"
# What the local stack deploys: your own cache with an ACL user, every function's concurrency reserved.
LOCAL_PARAMETER_SET = "own-cache-acl"
# The local account's values of what a set names in the user's account.
LOCAL_VALUES: dict[str, Any] = {
    "Stage": "local",
    "JwtIssuer": "https://local.coupon.test/",
    "JwtAudience": ["coupon-local"],
    "UserIdClaim": "sub",
    "JwtTokenUse": "access",
    "RedisClusterMode": "false",  # one local redis-server; tests/integration/test_redis_cluster.py runs a cluster
}


def parameter_set(name: str) -> dict[str, Any]:
    """A documented parameter set: {"description", "accountConcurrency", "parameters"}."""
    document: dict[str, Any] = json.loads((PARAMETER_SETS / f"{name}.json").read_text())
    return document


def local_parameters() -> dict[str, Any]:
    return {**parameter_set(LOCAL_PARAMETER_SET)["parameters"], **LOCAL_VALUES}


class _CloudFormationLoader(yaml.SafeLoader):
    """Accepts the short intrinsic tags (!Ref, !Sub, ...) and keeps their arguments as plain data."""


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)  # the long form's list, as `sam package` writes it
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 - safe loader subclass
    return document


PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "000000000000",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "coupon-local",
}


class Intrinsics:
    """Resolves CloudFormation's intrinsic functions for one set of parameter values. A resource's Ref or
    attribute resolves to what the local account made for it (``physical``, keyed "Name" for its Ref and
    "Name.Attribute" for an attribute), else to None: only AWS knows it."""

    def __init__(
        self, template: dict[str, Any], parameters: dict[str, Any], physical: dict[str, Any] | None = None
    ) -> None:
        self._parameters = {
            **PSEUDO_PARAMETERS,
            **{
                name: parameters.get(name, spec.get("Default")) for name, spec in template.get("Parameters", {}).items()
            },
        }
        self._physical = physical or {}
        self._mappings: dict[str, Any] = template.get("Mappings", {})
        self._condition_expressions = template.get("Conditions", {})
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self._condition_expressions[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not (next(iter(value)) in ("Ref", "Condition") or next(iter(value)).startswith("Fn::")):
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        ((name, argument),) = value.items()
        function = self._functions.get(name)
        return function(argument) if function else None  # a function only AWS can evaluate

    @property
    def _functions(self) -> dict[str, Any]:
        return {
            "Ref": self._ref,
            "Condition": self.condition,
            "Fn::GetAtt": self._get_att,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::And": lambda args: all(self.resolve(a) for a in args),
            "Fn::Or": lambda args: any(self.resolve(a) for a in args),
            "Fn::Not": lambda args: not self.resolve(args[0]),
            "Fn::Sub": self._sub,
            "Fn::Join": lambda args: str(args[0]).join(str(v) for v in self.resolve(args[1])),
            "Fn::FindInMap": self._find_in_map,
        }

    def _find_in_map(self, argument: list[Any]) -> Any:
        mapping, top, second = (str(self.resolve(part)) for part in argument)
        return self._mappings[mapping][top][second]

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._parameters:
            return self._parameters[name]
        return self._physical.get(name)

    def _get_att(self, argument: str | list[str]) -> Any:
        resource, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        return self._physical.get(f"{resource}.{attribute}")

    def _if(self, argument: list[Any]) -> Any:
        condition, when_true, when_false = argument
        return self.resolve(when_true if self.condition(condition) else when_false)

    def _equals(self, argument: list[Any]) -> bool:
        left, right = (self.resolve(v) for v in argument)
        return bool(left == right)

    def _sub(self, argument: Any) -> Any:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {name: self.resolve(v) for name, v in variables.items()}

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                found = values[name]
            elif "." in name:
                found = self._get_att(name)
            else:
                found = self._ref(name)
            if found is None:
                raise LookupError(f"${{{name}}} has no local value")
            return str(found)

        try:
            return re.sub(r"\$\{([^}!]+)\}", value, text)
        except LookupError:
            return None


class _NoValue:
    """AWS::NoValue: the property or list item disappears."""


NO_VALUE: Any = _NoValue()


@dataclass(frozen=True)
class FunctionConfig:
    """A function as Lambda would configure it."""

    name: str  # logical id
    code_dir: Path
    handler: str  # module.function
    runtime: str
    memory_mb: int
    timeout_s: float
    reserved_concurrency: int | None
    tracing: bool
    layer_dirs: tuple[Path, ...]
    # The template's Globals and function variables; None where only AWS knows the value.
    environment: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str  # as in the template, e.g. /coupons/{couponId}
    function: str  # logical id
    authorizer: str  # "NONE", "AWS_IAM" or the name of a JWT authorizer

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @cached_property  # matched on every request of the local gateway
    def pattern(self) -> re.Pattern[str]:
        def group(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.endswith("+"):
                return f"(?P<{name[:-1]}>.+)"
            return f"(?P<{name}>[^/]+)"

        return re.compile("^" + re.sub(r"\{([^}]+)\}", group, self.path) + "$")


@dataclass(frozen=True)
class Throttle:
    """An HTTP API route's throttle: a token bucket refilled at ``rate`` per second, holding ``burst``."""

    rate: float
    burst: int


# API Gateway's own per-account, per-region limit, across every API (a quota AWS can raise).
ACCOUNT_THROTTLE = Throttle(rate=10_000, burst=5_000)


@dataclass(frozen=True)
class JwtAuthorizer:
    issuer: str
    audience: tuple[str, ...]


@dataclass(frozen=True)
class QueueMapping:
    """The IssueQueue, its redrive policy and the SQS event source mapping that feeds a function."""

    function: str
    visibility_timeout_s: int
    max_receive_count: int
    batch_size: int
    batching_window_s: float
    max_concurrency: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Schedule:
    function: str
    every_s: float


class Template:
    def __init__(
        self, path: Path, parameters: dict[str, Any] | None = None, physical: dict[str, Any] | None = None
    ) -> None:
        self.path = path
        self.document = load_template(path)
        self.parameters = {**local_parameters(), **(parameters or {})}
        self.intrinsics = Intrinsics(self.document, self.parameters, physical)
        self.resources: dict[str, Any] = self.document.get("Resources", {})

    def _of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == kind}

    @cached_property
    def functions(self) -> dict[str, FunctionConfig]:
        defaults = self.document.get("Globals", {}).get("Function", {})
        layers = {
            name: (self.path.parent / r["Properties"]["ContentUri"]).resolve()
            for name, r in self._of_type("AWS::Serverless::LayerVersion").items()
        }
        configs = {}
        for name, resource in self._of_type("AWS::Serverless::Function").items():
            properties = {**defaults, **resource["Properties"]}
            variables = {
                **defaults.get("Environment", {}).get("Variables", {}),
                **resource["Properties"].get("Environment", {}).get("Variables", {}),
            }
            resolved = self.intrinsics.resolve(variables)
            reserved = self.intrinsics.resolve(properties.get("ReservedConcurrentExecutions"))
            reserved = None if reserved is NO_VALUE else reserved
            configs[name] = FunctionConfig(
                name=name,
                code_dir=(self.path.parent / properties["CodeUri"]).resolve(),
                handler=properties["Handler"],
                runtime=properties.get("Runtime", "python3.13"),
                memory_mb=int(properties.get("MemorySize", 128)),
                timeout_s=float(properties.get("Timeout", 3)),
                reserved_concurrency=None if reserved is None else int(reserved),
                tracing=properties.get("Tracing") == "Active",
                layer_dirs=tuple(layers[layer["Ref"]] for layer in properties.get("Layers", []) if "Ref" in layer),
                environment={key: None if value is None else str(value) for key, value in resolved.items()},
            )
        return configs

    @cached_property
    def http_api(self) -> dict[str, Any]:
        apis = self._of_type("AWS::Serverless::HttpApi")
        return next(iter(apis.values())).get("Properties", {}) if apis else {}

    @cached_property
    def routes(self) -> list[HttpRoute]:
        default_authorizer = self.http_api.get("Auth", {}).get("DefaultAuthorizer", "NONE")
        routes = []
        for name, resource in self._of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") != "HttpApi":
                    continue
                properties = event["Properties"]
                routes.append(
                    HttpRoute(
                        method=str(properties["Method"]).upper(),
                        path=properties["Path"],
                        function=name,
                        authorizer=properties.get("Auth", {}).get("Authorizer", default_authorizer),
                    )
                )
        # Most specific first, as API Gateway matches: fewer path variables win.
        return sorted(routes, key=lambda r: (r.path.count("{"), r.path))

    @cached_property
    def route_throttles(self) -> dict[str, Throttle]:
        """Each route's throttle (its RouteSettings, else the DefaultRouteSettings), by route key."""
        settings = self.intrinsics.resolve(self.http_api.get("RouteSettings", {}))
        default = self.intrinsics.resolve(self.http_api.get("DefaultRouteSettings", {}))

        def throttle(setting: dict[str, Any]) -> Throttle:
            return Throttle(
                rate=float(setting.get("ThrottlingRateLimit", ACCOUNT_THROTTLE.rate)),
                burst=int(setting.get("ThrottlingBurstLimit", ACCOUNT_THROTTLE.burst)),
            )

        return {route.route_key: throttle({**default, **settings.get(route.route_key, {})}) for route in self.routes}

    @cached_property
    def jwt_authorizers(self) -> dict[str, JwtAuthorizer]:
        authorizers = self.http_api.get("Auth", {}).get("Authorizers", {})
        found = {}
        for name, spec in authorizers.items():
            if "JwtConfiguration" not in spec:
                continue
            configuration = self.intrinsics.resolve(spec["JwtConfiguration"])
            audience = configuration["audience"]
            found[name] = JwtAuthorizer(
                issuer=str(configuration["issuer"]),
                audience=tuple(audience if isinstance(audience, list) else [audience]),
            )
        return found

    @cached_property
    def queue_mapping(self) -> QueueMapping:
        queue = self.resources["IssueQueue"]["Properties"]
        for name, resource in self._of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") != "SQS":
                    continue
                mapping = event["Properties"]
                return QueueMapping(
                    function=name,
                    visibility_timeout_s=int(queue["VisibilityTimeout"]),
                    max_receive_count=int(queue["RedrivePolicy"]["maxReceiveCount"]),
                    batch_size=int(mapping.get("BatchSize", 10)),
                    batching_window_s=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
                    # Lambda's default for an SQS source without a cap is 1,000; 2 is the floor it allows.
                    max_concurrency=int(mapping.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)),
                    report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
                )
        raise ValueError(f"{self.path} has no SQS event source mapping")

    @cached_property
    def schedules(self) -> list[Schedule]:
        units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
        found = []
        for name, resource in self._of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") not in ("Schedule", "ScheduleV2"):
                    continue
                rate = re.fullmatch(r"rate\((\d+) (\w+)\)", str(event["Properties"]["ScheduleExpression"]))
                if rate:
                    found.append(Schedule(name, int(rate.group(1)) * units[rate.group(2)]))
        return found
