"""batch_persist's entry point: SQS batches in, partial batch failures out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore import metrics
from couponcore.adapters.emf_metrics import invocation_metrics
from couponcore.bootstrap import container
from couponcore.domain.reservation import ReservationMessage
from couponcore.observability import logger, traced


class CouponBatchError(Exception):
    """This record's coupon could not be persisted in this batch; SQS delivers it again."""


@logger.inject_lambda_context(clear_state=True)
@invocation_metrics.log_metrics
@traced
def handle_sqs_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Parse every record, persist them grouped by coupon, then report each record's fate to Powertools.

    A record that cannot be parsed fails alone (after the redrive count it reaches the DLQ); a coupon whose
    transaction fails fails its own records only; every other record is persisted and deleted.
    """
    parsed: dict[str, ReservationMessage] = {}
    records = event.get("Records", [])
    sink = container().metrics
    sink.observe(metrics.BATCH_SIZE, len(records))
    for record in records:
        try:
            parsed[record["messageId"]] = ReservationMessage.from_json(record["body"])
        except (ValueError, KeyError, TypeError) as error:
            logger.error("unparseable reservation", extra={"message_id": record.get("messageId"), "error": repr(error)})
    report = container().persist.persist(parsed.values())

    def settle(record: SQSRecord) -> None:
        message = parsed.get(record.message_id)
        if message is None:
            sink.count(metrics.BATCH_FAILED_RECORDS, reason="unparseable")
            raise ValueError(f"record {record.message_id} is not a reservation")
        failure = report.failed_coupons.get(message.coupon_id)
        if failure is not None:
            sink.count(metrics.BATCH_FAILED_RECORDS, reason="coupon_failed")
            raise CouponBatchError(str(failure))

    # Report even a wholly failed batch record by record: the function does not error, and only the
    # failed records come back (the same as an error would do, minus the alarm noise).
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
    return dict(response)
