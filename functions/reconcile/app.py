"""Scheduled (and runnable by hand): repairs drift between Redis reservations and MySQL issues."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore.bootstrap import container
from couponcore.metrics import invocation_metrics
from couponcore.observability import logger, traced


@logger.inject_lambda_context(clear_state=True)
@invocation_metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = container().reconcile.run()
    logger.info("reconciliation done", extra={"report": report.__dict__})
    return {
        "couponsChecked": report.coupons_checked,
        "resent": report.resent,
        "confirmed": report.confirmed,
        "restored": report.restored,
        "failedCoupons": report.failed,
    }
