"""batch_persist's entry point: SQS batches in, partial batch failures out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore import metrics
from couponcore.adapters.emf_metrics import invocation_metrics
from couponcore.bootstrap import services
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.reservation import ForgedReservationError, ReservationMessage
from couponcore.observability import logger, traced


class CouponBatchError(Exception):
    """This record's coupon could not be persisted in this batch; SQS delivers it again."""


@logger.inject_lambda_context(clear_state=True)
@invocation_metrics.log_metrics
@traced
def handle_sqs_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Open every record, persist them grouped by coupon, then report each record's fate to Powertools.

    Only what the service signed is persisted. A forged or altered record goes to the dead-letter queue at
    once (and is deleted here); one that cannot be parsed fails alone (after the redrive count it reaches
    the DLQ); a coupon whose transaction fails fails its own records only; every other record is
    persisted and deleted.
    """
    app = services()
    parsed: dict[str, ReservationMessage] = {}
    forged: dict[str, str] = {}  # message id -> why it was moved to the dead letters ("" if it could not be)
    records = event.get("Records", [])
    app.metrics.observe(metrics.BATCH_SIZE, len(records))
    for record in records:
        try:
            parsed[record["messageId"]] = app.adapters.seal.open(record["body"])
        except ForgedReservationError as error:
            forged[record["messageId"]] = _dead_letter(record, str(error))
        except (ValueError, KeyError, TypeError) as error:
            logger.error("unparseable reservation", extra={"message_id": record.get("messageId"), "error": repr(error)})
    report = app.persist.persist(parsed.values())

    def settle(record: SQSRecord) -> None:
        if record.message_id in forged:
            if not forged[record.message_id]:
                raise ForgedReservationError("not yet in the dead-letter queue")  # SQS delivers it again
            return  # in the dead letters: deleted from the issue queue
        message = parsed.get(record.message_id)
        if message is None:
            app.metrics.count(metrics.BATCH_FAILED_RECORDS, reason="unparseable")
            raise ValueError(f"record {record.message_id} is not a reservation")
        failure = report.failed_coupons.get(message.coupon_id)
        if failure is not None:
            app.metrics.count(metrics.BATCH_FAILED_RECORDS, reason="coupon_failed")
            raise CouponBatchError(str(failure))

    # Report even a wholly failed batch record by record: the function does not error, and only the
    # failed records come back (the same as an error would do, minus the alarm noise).
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
    return dict(response)


def _dead_letter(record: dict[str, Any], reason: str) -> str:
    """A reservation the service did not sign: refused, counted, kept for a person. Returns "" when it could
    not be moved (it is then retried, and reaches the DLQ by the redrive count at worst)."""
    app = services()
    app.metrics.count(metrics.FORGED_RESERVATIONS)
    logger.error("forged reservation refused", extra={"message_id": record["messageId"], "reason": reason})
    try:
        app.adapters.queue.dead_letter(record["body"], reason)
    except DependencyUnavailableError:
        logger.warning("forged reservation not moved to the DLQ yet", extra={"message_id": record["messageId"]})
        return ""
    return reason
