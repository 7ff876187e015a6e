"""A function's handler called in this process, for tools that count what one invocation does (tests of
handlers, bench/cache_savings.py). One invocation at a time, as in a container; the local runtime
(localdev.runtime) is what runs functions as Lambda does."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes Powertools reads from the runtime's context."""

    function_name: str = "local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    timeout_ms: int = 10_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@cache
def handler(function_dir: str) -> Handler:
    """functions/<dir>/app.py's lambda_handler, imported once as Lambda's init would."""
    path = ROOT / "functions" / function_dir / "app.py"
    spec = importlib.util.spec_from_file_location(f"function_{function_dir}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: Handler = module.lambda_handler
    return found


def invoke(function_dir: str, event: dict[str, Any], timeout_ms: int = 10_000) -> Any:
    """One invocation, with as much time left as a fresh invocation of a function with this timeout."""
    return handler(function_dir)(event, LambdaContext(function_name=function_dir, timeout_ms=timeout_ms))
