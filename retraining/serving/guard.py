"""uvicorn's httptools protocol with the limits a server facing hostile clients needs.

uvicorn bounds nothing before a request's head is complete: a connection that sends half
a header (or nothing) is kept for ever, a header of any size is read into memory, and
every accepted socket costs a file descriptor until the process has none left. This
protocol adds, per connection and per server process:

- a **head timeout**: the request line and headers must be complete within
  ``head_timeout`` seconds of the connection (or of the request's first byte on a
  keep-alive connection); else 408 and the connection is closed;
- a **head size cap**: more than ``max_head_bytes`` of request line and headers gets 431;
- a **body timeout**: no body bytes for ``body_timeout`` seconds while a body is due gets
  408 (a half-sent upload cannot hold the process, or its shutdown, for long);
- a **connection cap** below the file limit: at the cap, the connection idle longest (no
  request being read or answered) is closed to make room, as nginx reuses idle keep-alive
  connections; when none is idle the new connection gets 503 and is closed.

Nothing is added to a request that arrives in one piece: timers are armed only for a head
or a body that is still incomplete after the bytes at hand were parsed. The limits travel
in :class:`Limits` through the uvicorn config, so each worker process applies its own.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
FALLBACK_MAX_CONNECTIONS = 1000  # where no file limit can be read (Windows: sockets are handles, not descriptors)
LINGER = 1.0  # s: after a refusal, read and drop what the client still sends, so it can read the answer
LINGER_BYTES = 4 * 1024 * 1024
WARN_EVERY = 10.0  # s: at most one log line this often about the connection cap


@dataclass(frozen=True)
class Limits:
    """What one server process allows a client."""

    head_timeout: float = 10.0
    max_head_bytes: int = 64 * 1024
    body_timeout: float = 10.0
    max_connections: int = FALLBACK_MAX_CONNECTIONS


class GuardedConfig(Config):
    """uvicorn's Config and the :class:`Limits` (it is pickled to each worker)."""

    def __init__(self, app, limits: Limits, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits


class _Pool:
    """The connections of one server process that no request is using, oldest first."""

    def __init__(self) -> None:
        self.idle: dict = {}
        self.evicted = self.refused = 0
        self.warned_at: dict[str, float] = {}

    def warn(self, message: str, *args) -> None:
        """Log ``message`` at most once every WARN_EVERY seconds (a flood must not flood the log)."""
        now = time.monotonic()
        if now - self.warned_at.get(message, -WARN_EVERY) >= WARN_EVERY:
            self.warned_at[message] = now
            log.warning(message, *args)


_POOLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # uvicorn's ServerState -> _Pool


def pool_stats() -> dict:
    """Connections evicted and refused at the cap, this process."""
    return {"evicted": sum(p.evicted for p in _POOLS.values()), "refused": sum(p.refused for p in _POOLS.values())}


def _answer(status: bytes, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % (status, len(body))
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the head/body timeouts, the head size cap and the connection cap."""

    def __init__(self, config: Config, server_state, app_state, _loop=None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: Limits = getattr(config, "limits", None) or Limits()
        self._pool = _POOLS.get(server_state) or _POOLS.setdefault(server_state, _Pool())
        self._head_since: float | None = None  # loop time the head being read began; None: no head being read
        self._head_bytes = 0
        self._timer = None
        self._lingering = 0  # bytes dropped after a refusal; -1: not refusing

    # -- connections ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._lingering = -1
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self._pool.refused += 1
            self._pool.warn("%d connections open, the cap (--max-connections): refusing new ones with 503", len(self.connections))
            self.connections.discard(self)
            transport.write(_answer(b"503 Service Unavailable", "too many connections; try again shortly."))
            transport.close()
            return
        self._head_since = self.loop.time()
        self._pool.idle[self] = None
        self._arm(self.limits.head_timeout, self._head_timed_out)

    def _make_room(self) -> bool:
        """Close the connection idle longest; False if every connection is busy."""
        idle = self._pool.idle
        if not idle:
            return False
        victim = next(iter(idle))
        del idle[victim]
        self.connections.discard(victim)
        self._pool.evicted += 1
        self._pool.warn("%d connections open, the cap (--max-connections): closing the idle ones, oldest first", len(self.connections))
        victim._cancel_timer()
        victim.transport.close()
        return True

    def connection_lost(self, exc) -> None:
        self._pool.idle.pop(self, None)
        self._cancel_timer()
        super().connection_lost(exc)

    # -- reading --------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:  # refused: drop what still comes, for a while
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        if self._head_since is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._head_since is not None:
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(b"431 Request Header Fields Too Large", f"the request line and headers are over {self.limits.max_head_bytes} bytes.")
            elif self._timer is None:  # half a head: it has what is left of the head timeout
                self._arm(self.limits.head_timeout - (self.loop.time() - self._head_since), self._head_timed_out)
        elif self.cycle is not None and self.cycle.more_body and not self.cycle.response_complete:
            self._arm(self.limits.body_timeout, self._body_timed_out)  # part of a body: restart the clock
        elif self._timer is not None:
            self._cancel_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_since is None:
            self._head_since, self._head_bytes = self.loop.time(), 0

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._pool.idle.pop(self, None)  # a request: busy until it is answered (a half-sent head stays evictable)
        self._cancel_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is not None and self.cycle.response_complete:
            self._pool.idle[self] = None  # keep-alive: idle again, the newest

    # -- timers and refusals -------------------------------------------------------------
    def _arm(self, seconds: float, callback) -> None:
        self._cancel_timer()
        self._timer = self.loop.call_later(max(seconds, 0.0), callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._head_since is not None and not self.transport.is_closing():
            self._refuse(b"408 Request Timeout", f"the request line and headers did not arrive within {self.limits.head_timeout:g} s.")

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_started or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app is not reading yet: the wait is ours, not the client's
            self._arm(self.limits.body_timeout, self._body_timed_out)
            return
        cycle.scope["state"]["body_timed_out"] = True  # the app counts a 408, not a client gone away
        self._refuse(b"408 Request Timeout", f"no body bytes for {self.limits.body_timeout:g} s.")

    def _refuse(self, status: bytes, message: str) -> None:
        """Answer ``status``, stop reading requests, close once the client had time to read it."""
        self._head_since = None
        self._pool.idle.pop(self, None)
        self._cancel_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's task, if any, reads a disconnect and its answer goes nowhere
            self.cycle.message_event.set()
        self.transport.write(_answer(status, message))
        self._lingering = 0
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER, self.transport.close)
