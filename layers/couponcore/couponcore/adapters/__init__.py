"""The only code that talks to MySQL, Redis and SQS."""
