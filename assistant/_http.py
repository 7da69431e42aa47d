"""The HTTP server's own limits (security review round 3, F5): how much of a request's head it
buffers and how long it waits for it.

uvicorn's C parser (httptools) buffers a request's line and headers for as long as they come:
ten connections sending 40 MB of unterminated header grew the server by 400 MB, and a socket
that sends a byte now and then is never closed (uvicorn's keep-alive timeout only runs between
requests). :class:`BoundedHttpToolsProtocol` answers 431 and closes once a request's head passes
``HEAD_MAX_BYTES``, and closes a connection whose head is not complete ``HEAD_TIMEOUT`` seconds
after it began. A body is not counted: its size is the app's to limit (``BodySizeLimit``).
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("cpc.http")

HEAD_MAX_BYTES = 64 * 1024  # request line and headers; browsers send < 8 KB, proxies cap at 8-64 KB
HEAD_TIMEOUT = 10.0  # seconds from a request's first byte (or the connection) to the end of its headers
KEEP_ALIVE_SECONDS = 5  # idle between requests (uvicorn's default, named here)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size and a time limit on each request's head."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_timer = None
        self._in_message = False  # between a request's first byte and the end of its body
        self._start_head()

    def _start_head(self) -> None:
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

    def _end_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.info("closed a connection whose request headers took over %g s", HEAD_TIMEOUT)
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self._end_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and not self._in_message:  # the next request on a kept-alive connection
            self._start_head()
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        # counted after the parser saw the bytes: a body arriving with the headers is not head
        if self._head_timer is not None and self._head_bytes > HEAD_MAX_BYTES and not self.transport.is_closing():
            self._end_head()
            self._refuse_head()

    def on_message_begin(self) -> None:
        self._in_message = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_message = False

    def on_headers_complete(self) -> None:
        self._end_head()
        super().on_headers_complete()

    def _refuse_head(self) -> None:
        body = b'{"error":"request headers over %d bytes","detail":null}' % HEAD_MAX_BYTES
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()
        self.parser = None  # what it buffered goes with it


def server_options() -> dict[str, Any]:
    """uvicorn.Config keywords every `cpc serve` uses (one worker or several)."""
    return {"http": BoundedHttpToolsProtocol, "timeout_keep_alive": KEEP_ALIVE_SECONDS,
            "h11_max_incomplete_event_size": HEAD_MAX_BYTES}
