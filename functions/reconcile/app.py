"""Scheduled (and runnable by hand): repairs drift between Redis reservations and MySQL issues."""

from couponcore.entrypoints.schedule import handle_reconcile

lambda_handler = handle_reconcile
