"""The HTTP API: request and response models, routes, and the one mapping of errors to statuses."""
