"""The developer's side of the local stack, in one place: where this machine's MySQL, Redis and AWS
emulator listen, and the administrator's credentials the local tools (tests, benchmarks, migrations run by
hand, the provisioning of the local account) use. The functions never see these: they get their role's
credentials and their secrets, as in AWS (localdev/stack.py).

Every entry point of the local tooling calls `use_local_defaults()` first; a value already in the
environment wins (CI, a developer pointing a tool elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

# One local CA per user, shared by every checkout: the servers one checkout started are trusted by another
# (scripts/services.sh makes it, in the same place).
LOCAL_CA = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "coupon-local" / "tls" / "ca.pem"

LOCAL_DEFAULTS = {
    # scripts/services.sh starts them: TLS only, certificates from the local CA.
    "DB_HOST": "127.0.0.1",
    "DB_PORT": "3307",
    "DB_USER": "root",
    "DB_PASSWORD": "",
    "DB_SSL": "true",
    "DB_SSL_CA": str(LOCAL_CA),
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6380",
    "REDIS_SSL": "true",
    "REDIS_SSL_CA": str(LOCAL_CA),
    # scripts/sqs_emulator.sh: SQS and Secrets Manager; the developer's keys, an administrator's.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def use_local_defaults(env: MutableMapping[str, str] = os.environ) -> None:
    for name, value in LOCAL_DEFAULTS.items():
        env.setdefault(name, value)
