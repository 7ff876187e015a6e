"""A local API Gateway HTTP API for the routes of template.yaml, in front of the local Lambda runtime.

Per request, as API Gateway does: match the route, run its authorizer (the JWT authorizer against the
local issuer's key; for AWS_IAM routes a token stands in for a SigV4 signature), build the payload-2.0
event, invoke the function and turn its answer into the HTTP response. What API Gateway itself answers
is answered here the same way: 404 and 413 before any function, 429 `Too Many Requests` when the route's
or the account's throttle has no token left (localdev/throttling.py, the template's RouteSettings), 401 for
a missing or invalid token, 403 for an IAM route without credentials, and 500 `Internal Server Error` when
the invocation fails (the function at its concurrency cap, timed out, crashed).

Also served: GET /metrics (Prometheus, made from the functions' EMF records), the issuer's
GET /.well-known/jwks.json, Lambda's Invoke API (POST /2015-03-31/functions/{name}/invocations), and
GET /_local/aws: the local account's resources, every AWS call the functions made (as the IAM gateway
judged it) and the permissions no call has used yet.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from localdev import jwt_local
from localdev.events import http_api_event
from localdev.metrics_sink import PrometheusSink
from localdev.runtime import InvocationError, LambdaRuntime, TooManyRequestsError
from localdev.template import ACCOUNT_THROTTLE, HttpRoute, Template
from localdev.throttling import RouteThrottling

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
log = logging.getLogger("localdev.api")
JSON = "application/json"


def _message(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=json.dumps({"message": message}).encode(), content_type=JSON)


class HttpApiGateway:
    def __init__(
        self,
        template: Template,
        runtime: LambdaRuntime,
        sink: PrometheusSink,
        verify_tokens: bool,
        aws_audit: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._aws_audit = aws_audit
        self._routes = template.routes
        self._authorizers = template.jwt_authorizers
        self._runtime = runtime
        self._sink = sink
        self._verify_tokens = verify_tokens
        self._throttling = RouteThrottling(template.route_throttles, ACCOUNT_THROTTLE)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_PAYLOAD_BYTES)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_get("/_local/aws", self._aws)
        app.router.add_post("/2015-03-31/functions/{function}/invocations", self._lambda_invoke)
        app.router.add_route("*", "/{path:.*}", self._http_api)
        return app

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        for route in self._routes:
            if route.method not in (method, "ANY"):
                continue
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._sink.exposition(), headers={"Content-Type": "text/plain; version=0.0.4"})

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(jwt_local.jwks())

    async def _aws(self, request: web.Request) -> web.Response:
        return web.json_response(self._aws_audit() if self._aws_audit else {})

    async def _http_api(self, request: web.Request) -> web.Response:
        matched = self.match(request.method, request.path)
        if matched is None:
            return _message(404, "Not Found")
        response = await self._answer(request, *matched)
        self._sink.gateway_answers.labels(route=matched[0].route_key, status=str(response.status)).inc()
        return response

    async def _answer(self, request: web.Request, route: HttpRoute, path_parameters: dict[str, str]) -> web.Response:
        if not self._throttling.admit(route.route_key):
            return _message(429, "Too Many Requests")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _message(413, "Request Entity Too Large")
        authorizer: dict[str, Any] | None = None
        if self._verify_tokens and route.authorizer != "NONE":
            claims = self._verified_claims(request.headers.get("Authorization", ""), route)
            if claims is None:
                # IAM routes refuse an unsigned request with 403; JWT routes a missing or bad token with 401.
                return _message(403, "Forbidden") if route.authorizer == "AWS_IAM" else _message(401, "Unauthorized")
            scopes = str(claims.get("scope", "")).split()
            authorizer = {"jwt": {"claims": _as_api_gateway_claims(claims), "scopes": scopes}}
        event = self._event(request, route, path_parameters, body)
        if authorizer:
            event["requestContext"]["authorizer"] = authorizer
        try:
            result = await self._runtime.invoke(route.function, event)
        except (TooManyRequestsError, InvocationError) as failed:
            # A throttled invocation too: API Gateway answers 500 for it, which the route throttles prevent.
            log.warning("%s %s: integration error: %s", request.method, request.path, failed)
            return _message(500, "Internal Server Error")
        return _response(result)

    def _verified_claims(self, authorization: str, route: HttpRoute) -> dict[str, Any] | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        # An IAM route has no authorizer of its own; locally the default JWT issuer signs for it.
        authorizer = self._authorizers.get(route.authorizer) or next(iter(self._authorizers.values()), None)
        if authorizer is None:
            return None
        try:
            return jwt_local.verify(token, authorizer.issuer, authorizer.audience)
        except jwt_local.InvalidTokenError:
            return None

    @staticmethod
    def _event(request: web.Request, route: HttpRoute, path_parameters: dict[str, str], body: bytes) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        text: str | None = None
        encoded = False
        if body:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text, encoded = base64.b64encode(body).decode(), True
        return http_api_event(
            request.method,
            request.path,
            route_key=route.route_key,
            path_parameters=path_parameters or None,
            body=text,
            headers=headers,
            query=request.query_string,
            source_ip=request.remote or "127.0.0.1",
            is_base64_encoded=encoded,
        )

    async def _lambda_invoke(self, request: web.Request) -> web.Response:
        """Lambda's Invoke API (RequestResponse), for invoking a function by hand."""
        function = request.match_info["function"]
        if function not in self._runtime.function_names():
            return web.json_response({"Type": "User", "Message": f"Function not found: {function}"}, status=404)
        payload = await request.read()
        try:
            result = await self._runtime.invoke(function, json.loads(payload or b"{}"))
        except TooManyRequestsError as throttled:
            return web.json_response({"Type": "User", "Message": str(throttled)}, status=429)
        except InvocationError as failed:
            body = failed.payload or json.dumps({"errorType": failed.kind, "errorMessage": str(failed)}).encode()
            return web.Response(body=body, content_type=JSON, headers={"X-Amz-Function-Error": "Unhandled"})
        return web.Response(body=json.dumps(result).encode(), content_type=JSON)


def _as_api_gateway_claims(claims: dict[str, Any]) -> dict[str, str]:
    # API Gateway hands claims to the function as strings; a list becomes "[a b]".
    def text(value: Any) -> str:
        if isinstance(value, list):
            return "[" + " ".join(str(v) for v in value) + "]"
        return str(value)

    return {name: text(value) for name, value in claims.items()}


def _response(result: Any) -> web.Response:
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0: anything else is a 200 JSON answer.
        return web.Response(body=json.dumps(result).encode(), content_type=JSON)
    raw = result.get("body") or ""
    payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    response = web.Response(status=int(result["statusCode"]), body=payload)
    for name, value in (result.get("headers") or {}).items():
        response.headers[str(name)] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", str(cookie))
    return response
