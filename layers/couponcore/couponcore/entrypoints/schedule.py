"""The reconcile function's entry point: run on a schedule (and by hand), it repairs drift between
Redis reservations and MySQL issues."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore.adapters.emf_metrics import invocation_metrics
from couponcore.bootstrap import services
from couponcore.observability import logger, traced


@logger.inject_lambda_context(clear_state=True)
@invocation_metrics.log_metrics
@traced
def handle_reconcile(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = services().reconcile.run()
    logger.info("reconciliation done", extra={"report": report.__dict__})
    return {
        "couponsChecked": report.coupons_checked,
        "resent": report.resent,
        "confirmed": report.confirmed,
        "missingSeats": report.missing,
        "recounted": report.recounted,
        "failedCoupons": report.failed,
        "skipped": report.skipped,
    }
