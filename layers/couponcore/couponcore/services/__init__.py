"""Use cases: what the entry points call. They speak domain objects, never HTTP, and reach MySQL, Redis
and SQS only through the Protocols of ports.py."""
