"""The front door's origin check: only requests CloudFront forwarded (or IAM signed) reach the routes."""

from __future__ import annotations

from typing import Any

from couponcore.adapters.origin import HEADER, REREAD_EVERY_S, OriginGuard


def request(headers: dict[str, str] | None = None, iam: bool = False) -> dict[str, Any]:
    context: dict[str, Any] = {"authorizer": {"iam": {"userArn": "arn:aws:iam::1:user/ops"}}} if iam else {}
    return {"headers": headers or {}, "requestContext": context}


def test_without_a_front_door_every_request_goes_on() -> None:
    assert OriginGuard(None, lambda: "unused").admits(request())


def test_only_the_secret_header_or_an_iam_signature_goes_on() -> None:
    guard = OriginGuard("arn:secret", lambda: "s3cret-value")
    assert guard.admits(request({HEADER: "s3cret-value"}))
    assert not guard.admits(request())
    assert not guard.admits(request({HEADER: "guess"}))
    assert guard.admits(request(iam=True))


def test_a_mismatch_reads_the_secret_again_before_refusing() -> None:
    reads: list[str] = []

    def read() -> str:
        reads.append("read")
        return "rotated" if len(reads) > 1 else "old"

    guard = OriginGuard("arn:secret", read)
    assert guard.admits(request({HEADER: "rotated"}))  # CloudFront already sends the rotated value
    assert reads == ["read", "read"]


def test_requests_around_the_front_door_do_not_become_secret_reads() -> None:
    reads: list[str] = []
    now = [0.0]

    def read() -> str:
        reads.append("read")
        return "value"

    guard = OriginGuard("arn:secret", read, monotonic=lambda: now[0])
    assert not any(guard.admits(request({HEADER: f"guess-{n}"})) for n in range(100))
    assert not any(guard.admits(request()) for _ in range(100))
    assert len(reads) == 200 + 1  # each compares with the cached value; one read again, for the first guess
    now[0] = REREAD_EVERY_S
    assert not guard.admits(request({HEADER: "guess"}))
    assert len(reads) == 200 + 1 + 2
