"""Idempotent async issue requests, on Powertools' idempotency utility (records in Redis): a client that
retries with the same ``Idempotency-Key`` gets the first answer again. A key belongs to its user, and is
bound to the request it first came with: the same key with another route or coupon is refused (422), not
taken for a new request. Without a key a retry is a new request, answered ``DUPLICATED_COUPON_ISSUE``, and
the status route tells the client what it holds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode
from couponcore.domain.issue_route import IssueRoute
from couponcore.services.coupons import IssueStatus

Reserve = Callable[[int, int], None]


class IdempotentIssue:
    def __init__(self, routes: Mapping[IssueRoute, Reserve], store: BasePersistenceLayer, ttl_s: int) -> None:
        self._routes = routes
        # Powertools' payload validation would do the binding, but its Redis layer drops the payload's hash
        # when it stores the answer; so the answer records the request it answers, and is checked here.
        self._config = IdempotencyConfig(event_key_jmespath="[userId, key]", expires_after_seconds=ttl_s)
        self._once = idempotent_function(
            self._answer, data_keyword_argument="request", persistence_store=store, config=self._config
        )

    def reserve(
        self, route: IssueRoute, coupon_id: int, user_id: int, key: str | None, context: LambdaContext | None = None
    ) -> Literal[IssueStatus.RESERVED]:
        """Reserve, or repeat the stored answer of the first request with this key; refusals raise CouponError.
        With ``context``, a request in progress is forgotten when its invocation would have timed out."""
        request = {"route": route.value, "couponId": coupon_id, "userId": user_id, "key": key}
        if key is None:
            answer = self._answer(request=request)
        else:
            if context is not None:
                self._config.register_lambda_context(context)
            answer = self._answer_once(request)
            if answer.get("for", [route, coupon_id]) != [route, coupon_id]:
                raise CouponError(ErrorCode.INVALID_REQUEST, "This Idempotency-Key was first used for another request.")
        if answer["code"] != IssueStatus.RESERVED:
            raise CouponError(ErrorCode(answer["code"]), answer["comment"])
        return IssueStatus.RESERVED

    def _answer_once(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self._once(request=request)
        except IdempotencyAlreadyInProgressError as error:
            # The first request with this key is still running; its answer is stored when it ends.
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, "The same request is in progress.") from error
        except IdempotencyPersistenceLayerError as error:
            raise DependencyUnavailableError("idempotency-store", error) from error
        return answer

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        # Refusals are answers worth repeating; an unavailable dependency raises, so nothing is stored.
        answered = [request["route"], request["couponId"]]
        try:
            self._routes[IssueRoute(request["route"])](request["couponId"], request["userId"])
        except CouponError as refusal:
            if refusal.code is ErrorCode.FAIL_COUPON_ISSUE_REQUEST:
                raise
            return {"code": refusal.code.value, "comment": refusal.comment, "for": answered}
        return {
            "code": IssueStatus.RESERVED.value,
            "comment": "The seat is held and will be persisted.",
            "for": answered,
        }
