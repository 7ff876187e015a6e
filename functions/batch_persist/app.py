"""SQS-triggered: persists reservations into MySQL, reporting partial batch failures."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore.batch_entry_point import persist_batch
from couponcore.metrics import invocation_metrics
from couponcore.observability import logger, traced


@logger.inject_lambda_context(clear_state=True)
@invocation_metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return persist_batch(event, context)
