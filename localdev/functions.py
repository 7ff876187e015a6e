"""Local stand-ins for Lambda execution environments.

A Lambda container serves one request at a time, and Powertools' resolver keeps the current request on
the instance. So, as in AWS, every worker thread here gets its own copy of the function module (its own
"container"); the couponcore layer is imported once and its clients are shared, which they allow.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]
_instances = count(1)


class LocalFunction:
    def __init__(self, name: str, code_dir: Path, handler: str = "app.lambda_handler") -> None:
        self.name = name
        self.code_dir = code_dir
        self.module_name, _, self.function_name = handler.rpartition(".")
        self._per_thread = threading.local()

    def _load(self) -> Handler:
        spec = importlib.util.spec_from_file_location(
            f"lambda_{self.name}_{next(_instances)}", self.code_dir / f"{self.module_name}.py"
        )
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {self.module_name} from {self.code_dir}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handler: Handler = getattr(module, self.function_name)
        return handler

    def invoke(self, event: dict[str, Any], context: Any) -> Any:
        handler: Handler | None = getattr(self._per_thread, "handler", None)
        if handler is None:
            handler = self._per_thread.handler = self._load()
        return handler(event, context)
