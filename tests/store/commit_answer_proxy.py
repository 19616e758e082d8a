"""A TCP proxy to PostgreSQL that loses the answer to a COMMIT, as a connection that dies at that
moment does: the server has the COMMIT (and, unless told otherwise, has answered it), the client
never hears back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

# asyncpg commits with a simple query: "COMMIT;" and its terminating zero byte.
COMMIT = b"COMMIT;\x00"


class CommitAnswerProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._mode: str | None = None
        self._refuse_after = False
        self._refusing = False
        self._held: list[asyncio.StreamWriter] = []
        self._pumps: set[asyncio.Task[None]] = set()
        self.fired = asyncio.Event()
        # Connections asked for (refused or not) and requests sent: it grows while anyone tries
        # to reach the database.
        self.tries = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def accept_again(self) -> None:
        """After `then_refuse`: the database is back."""
        self._refusing = False

    def lose_next_commit_answer(
        self, *, commit_reaches_server: bool = True, then_refuse: bool = False
    ) -> None:
        """The next COMMIT through the proxy is forwarded and its answer awaited, then both ends
        are closed; or, with `commit_reaches_server=False`, both ends are closed instead of
        forwarding it. With `then_refuse`, the proxy closes every connection at once from then on
        (the database is away), until `accept_again`."""
        self._mode = "after" if commit_reaches_server else "before"
        self._refuse_after = then_refuse

    def hold_next_commit(self) -> None:
        """The next COMMIT through the proxy is not forwarded and the client's end is closed, but
        the server's end is kept open until `release_held`: to the server the transaction is still
        in progress, as when it has not yet noticed that its client is gone."""
        self._mode = "hold"

    def release_held(self) -> None:
        """Closes the server ends kept by `hold_next_commit`: the server rolls their
        transactions back."""
        for writer in self._held:
            writer.close()
        self._held.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.release_held()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _connected(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.tries += 1
        if self._refusing:
            client_writer.close()
            return
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        answer_lost = asyncio.Event()

        def close() -> None:
            client_writer.close()
            server_writer.close()

        def fire() -> None:
            self._refusing = self._refuse_after
            close()
            self.fired.set()

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                self.tries += 1
                if COMMIT in data and self._mode is not None:
                    mode, self._mode = self._mode, None
                    if mode == "before":
                        fire()
                        return
                    if mode == "hold":
                        self._held.append(server_writer)
                        client_writer.close()
                        self.fired.set()
                        return
                    answer_lost.set()
                server_writer.write(data)
                await server_writer.drain()
            close()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                if answer_lost.is_set():
                    fire()  # the server has committed and answered; the client never hears it
                    return
                client_writer.write(data)
                await client_writer.drain()
            close()

        for pump in (upstream(), downstream()):
            task = asyncio.create_task(_quietly(pump))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)


async def _quietly(pump: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(OSError):  # a side that closed first
        await pump
