"""Reads the HttpApi routes of template.yaml: which handler serves which method and path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml


class _CloudFormationLoader(yaml.SafeLoader):
    """Accepts the short intrinsic tags (!Ref, !Sub, ...) and keeps their arguments as plain data."""


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"Fn::{suffix}" if suffix != "Ref" else "Ref": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CloudFormationLoader)  # noqa: S506 - safe loader subclass
    return document


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str  # as in the template, e.g. /coupons/{couponId}
    function: str  # logical id
    code_dir: Path
    handler: str  # module.function
    authorizer: str  # "NONE", "AWS_IAM" or the name of a JWT authorizer

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @cached_property  # matched on every request of the local server
    def pattern(self) -> re.Pattern[str]:
        def group(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.endswith("+"):
                return f"(?P<{name[:-1]}>.+)"
            return f"(?P<{name}>[^/]+)"

        return re.compile("^" + re.sub(r"\{([^}]+)\}", group, self.path) + "$")


def http_routes(template_path: Path) -> list[HttpRoute]:
    template = load_template(template_path)
    default_authorizer = "NONE"
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::HttpApi":
            default_authorizer = resource.get("Properties", {}).get("Auth", {}).get("DefaultAuthorizer", "NONE")
    routes = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            routes.append(
                HttpRoute(
                    method=str(event["Properties"]["Method"]).upper(),
                    path=event["Properties"]["Path"],
                    function=logical_id,
                    code_dir=(template_path.parent / properties["CodeUri"]).resolve(),
                    handler=properties["Handler"],
                    authorizer=event["Properties"].get("Auth", {}).get("Authorizer", default_authorizer),
                )
            )
    return routes
