"""`make run`: the functions of template.yaml on the local Lambda runtime, behind the local HTTP API.

    python -m localdev.api_server [--port 3000] [--auth jwt|dev]

Identity is on, as deployed: issue and status routes need a token (`make token USER_ID=42`), admin routes
one with the admin scope (`make token USER_ID=1 ADMIN=1`). `--auth dev` (or LOCAL_AUTH=dev) turns it off:
the gateway verifies nothing and the functions trust the body's userId.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from localdev.stack import ROOT, LocalDeployment, StackOptions, containers_this_machine_holds, install_uvloop

log = logging.getLogger("localdev.api")


def parse_options() -> tuple[Path, StackOptions]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("LOCAL_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_API_PORT", "3000")))
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--auth", choices=["jwt", "dev"], default=os.environ.get("LOCAL_AUTH", "jwt"))
    parser.add_argument(
        "--account-concurrency",
        type=int,
        default=int(os.environ.get("LOCAL_ACCOUNT_CONCURRENCY", "1000")),
        help="the account's concurrency, as in AWS; reserved concurrency comes out of it (default 1000)",
    )
    parser.add_argument(
        "--max-containers",
        type=int,
        default=int(os.environ.get("LOCAL_MAX_CONTAINERS", "0")) or containers_this_machine_holds(),
        help="containers this machine runs at once (about 100 MB each); past it invocations wait "
        "(default: as many as the available memory holds at 150 MB each)",
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=float(os.environ.get("LOCAL_IDLE_TIMEOUT_S", "600")), help="seconds"
    )
    parser.add_argument("--no-workers", action="store_true", help="no SQS event source mapping, no schedules")
    parser.add_argument("--schedule-every", type=float, default=None, help="seconds, instead of the template's rate")
    args = parser.parse_args()
    return args.template, StackOptions(
        host=args.host,
        port=args.port,
        auth=args.auth,
        account_concurrency=args.account_concurrency,
        max_containers=args.max_containers,
        idle_timeout_s=args.idle_timeout,
        workers=not args.no_workers,
        schedule_every_s=args.schedule_every,
    )


async def serve(template: Path, options: StackOptions) -> None:
    stack = LocalDeployment(template, options)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stack.start()
    if options.auth == "dev":
        log.warning(
            "identity: DEVELOPMENT mode: no token is verified, the body's userId is trusted and admin routes "
            "are open (REQUIRE_IDENTITY=false in every function). Without LOCAL_AUTH=dev it runs as deployed."
        )
    else:
        log.info("identity: as deployed; tokens from `make token USER_ID=42` (ADMIN=1 for the admin routes)")
    log.info("serving http://%s:%d (metrics at /metrics)", options.host, options.port)
    await stopping.wait()
    log.info("stopping: containers, poller, gateway")
    await stack.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    install_uvloop()
    template, options = parse_options()
    asyncio.run(serve(template, options))


if __name__ == "__main__":
    main()
