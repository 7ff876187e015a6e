"""A TCP proxy that breaks a connection on command: put between the service and MySQL, Redis or the SQS
API, it passes bytes through, delays them, or cuts every connection and refuses new ones."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self.delay_s = 0.0
        self.refusing = False
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fault-proxy-{target_port}", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=5)
        return self

    def stop(self) -> None:
        self.cut()
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- faults ----

    def cut(self) -> None:
        """Drop every open connection (a restart, a failover) and refuse new ones until heal()."""
        self.refusing = True
        self._loop.call_soon_threadsafe(self._close_all)

    def slow(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def fail_over(self, target_port: int) -> None:
        """New connections go to another server (a promoted replica); open ones are dropped, as a failover
        drops them."""
        self._target = (self._target[0], target_port)
        self._loop.call_soon_threadsafe(self._close_all)

    def heal(self) -> None:
        self.refusing = False
        self.delay_s = 0.0

    # ---- plumbing ----

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._accept, sock=self._sock)

    def _close_all(self) -> None:
        for writer in list(self._writers):
            transport: Any = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()  # a reset, not a polite close
        self._writers.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}
        pipes = {
            asyncio.ensure_future(self._pipe(client_reader, server_writer)),
            asyncio.ensure_future(self._pipe(server_reader, client_writer)),
        }
        # Either side gone means the connection is gone, as the kernel would tell the other side at once.
        _, unfinished = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for pipe in unfinished:
            pipe.cancel()
        for writer in (client_writer, server_writer):
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self._copy(reader, writer)

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.refusing:
                return
            writer.write(data)
            await writer.drain()
