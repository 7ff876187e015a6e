"""Requests to the local API as a client that honours the route throttles."""

from __future__ import annotations

import time
from typing import Any

import httpx


def politely(client: httpx.Client, method: str, path: str, **request: Any) -> httpx.Response:
    """A request sent again after a second while the route's throttle answers 429 (small bursts: routes
    whose function holds a MySQL connection per invocation, the health routes)."""
    while (response := client.request(method, path, **request)).status_code == 429:
        time.sleep(1)
    return response
