"""SQS-triggered: persists reservations into MySQL, reporting partial batch failures."""

from couponcore.entrypoints.sqs_batch import handle_sqs_batch

lambda_handler = handle_sqs_batch
