"""How the outside world reaches the service: HTTP routes, the SQS batch, the schedule."""
