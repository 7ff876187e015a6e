"""The benchmark's bare handlers: what each measured route does at the least, with the raw clients, on the
same local runtime, gateway, template configuration and account as the service's own functions.

Each invocation parses the body, makes the route's one dependency call and answers JSON: no validation
framework, no ORM, no tracing, logging or metrics. The module imports only boto3, redis and pymysql, so a
cold start of it is the floor of every function's Init Duration. Connections are made on the first request,
with the service's settings (the same server, account, secret and verified TLS).
"""

import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pymysql
import redis  # noqa: F401 - the client's import is part of every init, as in the service's functions

_clients: dict[str, Any] = {}


def _redis() -> Any:
    if "redis" not in _clients:
        from couponcore.adapters.redis_client import create_redis
        from couponcore.config import Settings

        _clients["redis"] = create_redis(Settings.from_env())
    return _clients["redis"]


def _mysql() -> Any:
    if "mysql" not in _clients:
        import ssl

        from pymysql.constants import CLIENT

        from couponcore.adapters.aws import read_credentials
        from couponcore.config import Settings

        settings = Settings.from_env()
        user, password = read_credentials(settings.db_secret_arn, 5.0) if settings.db_secret_arn else ("", "")
        context = ssl.create_default_context(cafile=settings.db_ssl_ca) if settings.db_ssl else None
        _clients["mysql"] = pymysql.connect(
            host=settings.db_host,
            port=settings.db_port,
            user=user,
            password=password,
            database=settings.db_name,
            ssl=context,
            client_flag=CLIENT.MULTI_STATEMENTS,
        )
    return _clients["mysql"]


def _sqs() -> tuple[Any, str]:
    if "sqs" not in _clients:
        import os

        _clients["sqs"] = boto3.client("sqs"), os.environ["ISSUE_QUEUE_URL"]
    return _clients["sqs"]  # type: ignore[no-any-return]


def _answer(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(payload)}


def issue_async(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """One EVALSHA of the reservation script (the coupon's total comes in the query string); a seat reserved
    is one SendMessage. A sold-out coupon: the script's refusal only."""
    from couponcore.adapters.reservations import RESERVE_SCRIPT, reserve_keys
    from couponcore.domain.reservation import PendingReservation

    body = json.loads(event["body"])
    coupon_id, user_id = int(body["couponId"]), int(body["userId"])
    total = int(event.get("queryStringParameters", {}).get("total", "-1"))
    token = f"{user_id}-{time.time_ns()}"
    seat = PendingReservation(coupon_id, user_id, token, int(time.time() * 1000))
    if "reserve" not in _clients:
        _clients["reserve"] = _redis().register_script(RESERVE_SCRIPT)
    answer = int(_clients["reserve"](keys=reserve_keys(coupon_id), args=[user_id, total, seat.stored()]))
    if answer != 1:
        return _answer(409, {"isSuccess": False, "code": "INVALID_COUPON_ISSUE_QUANTITY"})
    sqs, queue_url = _sqs()
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"c": coupon_id, "u": user_id, "t": token}))
    return _answer(202, {"isSuccess": True, "status": "RESERVED", "reservationToken": token})


def issue_sync(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """The V1 transaction in its one round trip (the service's own statement batch)."""
    from couponcore.adapters.unit_of_work import SYNC_ISSUE_BATCH

    body = json.loads(event["body"])
    params = {"coupon_id": int(body["couponId"]), "user_id": int(body["userId"]), "now": datetime.now(UTC)}
    with _mysql().cursor() as cursor:
        cursor.execute(SYNC_ISSUE_BATCH, params)
        inserted = 0
        while cursor.nextset():
            row = cursor.fetchone()
            inserted = row[0] if row else inserted  # the last SELECT's: 1 when the issue was written
    if not inserted:
        return _answer(409, {"isSuccess": False, "code": "DUPLICATED_COUPON_ISSUE"})
    return _answer(200, {"isSuccess": True})


def coupons(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """The status route: the one pipelined read of the user's seat state."""
    from couponcore.adapters import redis_keys

    coupon_id, user = int(event["pathParameters"]["couponId"]), event["pathParameters"]["userId"]
    pipe = _redis().pipeline(transaction=False)
    pipe.sismember(redis_keys.reserved_users(coupon_id), user)
    pipe.sismember(redis_keys.rejected_users(coupon_id), user)
    pipe.exists(redis_keys.seats_counted(coupon_id))
    pipe.hexists(redis_keys.pending_reservations(coupon_id), user)
    pipe.hget(redis_keys.issued_at(coupon_id), user)
    holds, rejected, counted, pending, issued = pipe.execute()
    state = {"holds": holds, "rejected": rejected, "counted": counted, "pending": pending, "issued": issued}
    return _answer(200, {"couponId": coupon_id, "userId": int(user), **state})


WALLET_PAGE = (
    "SELECT i.id, i.coupon_id, i.date_issued, i.date_expire, i.date_used, i.order_id, c.title, c.discount_amount,"
    " c.min_available_amount FROM coupon_issues i FORCE INDEX (ix_coupon_issues_user_issued)"
    " STRAIGHT_JOIN coupons c FORCE INDEX (PRIMARY) ON c.id = i.coupon_id"
    " WHERE i.user_id = %s ORDER BY i.date_issued DESC, i.id DESC LIMIT 21"
)


def wallet(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """The wallet's first page: one range read of the user's issues, joined to their coupons."""
    user = int(event["pathParameters"]["userId"])
    connection = _mysql()
    with connection.cursor() as cursor:
        cursor.execute(WALLET_PAGE, (user,))
        rows = cursor.fetchall()
    connection.commit()
    items = [{"couponId": row[1], "dateIssued": row[2].isoformat(), "title": row[6]} for row in rows[:20]]
    return _answer(200, {"items": items})


def batch_persist(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """The raw bulk insert of one coupon's batch: each body parsed, the coupon row locked, the rows inserted
    (a repeated one ignored), the count, the commit."""
    records = [json.loads(record["body"]) for record in event["Records"]]
    if not records or "couponId" not in records[0]:
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in event["Records"]]}
    coupon_id, now = records[0]["couponId"], datetime.now(UTC)
    rows = [(coupon_id, r["userId"], datetime.fromtimestamp(r["reservedAt"] / 1000, UTC), now, now) for r in records]
    connection = _mysql()
    with connection.cursor() as cursor:
        cursor.execute("SELECT issued_quantity FROM coupons WHERE id = %s FOR UPDATE", (coupon_id,))
        cursor.executemany(
            "INSERT IGNORE INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
        cursor.execute(
            "UPDATE coupons SET issued_quantity = issued_quantity + %s WHERE id = %s", (cursor.rowcount, coupon_id)
        )
    connection.commit()
    return {"batchItemFailures": []}
