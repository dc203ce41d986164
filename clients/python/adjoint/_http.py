"""One kept-alive HTTP/1.1 connection to the service, shared by a client's threads.

A request takes the lock, reuses the connection (opening it when there is none, or when the
server has closed it while it sat idle), and reads the whole answer before letting go. A reused
connection that turns out to be closed (the server's keep-alive timeout, a proxy, a restart)
is replaced and the request sent again once: the service had not read it.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import urllib.parse
from typing import Iterator, Mapping, Optional, Tuple, Union

# Failures that mean "this kept-alive connection was already closed" when they come before any
# byte of the answer (RemoteDisconnected is a ConnectionResetError).
_STALE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.BadStatusLine)

Connection = Union[http.client.HTTPConnection, http.client.HTTPSConnection]


class Endpoint:
    """Where the service is: scheme, host, port and the path it is mounted under."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r} (give e.g. http://127.0.0.1:3000)")
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.base = parts.path.rstrip("/")
        self.timeout = timeout

    def connect(self) -> Connection:
        if self.https:
            conn: Connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        if conn.sock is not None:  # small requests and answers: no Nagle delay
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


def _closed_while_idle(conn: Connection) -> bool:
    """An idle connection with something to read has been closed by the server (or is broken)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class KeptAlive:
    """One connection, reused for every request, one request at a time (thread-safe)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._conn: Optional[Connection] = None
        self._served = 0  # requests answered on the current connection
        self.opened = 0  # connections opened so far (for tests and curiosity)

    def request(self, method: str, path: str, body: Optional[bytes], headers: Mapping[str, str]) -> Tuple[int, http.client.HTTPMessage, bytes]:
        """Send one request and read its whole answer: (status, headers, body)."""
        with self._lock:
            while True:
                if self._conn is not None and _closed_while_idle(self._conn):
                    self._close()
                reused = self._conn is not None and self._served > 0
                conn = self._conn or self._open()
                try:
                    conn.request(method, self.endpoint.base + path, body=body, headers=dict(headers))
                    response = conn.getresponse()
                    data = response.read()
                except _STALE:
                    self._close()
                    if reused:
                        continue  # the server had closed it: once more on a new connection
                    raise
                except BaseException:
                    self._close()  # a time-out or an interrupt leaves the connection mid-answer
                    raise
                self._served += 1
                if response.will_close:
                    self._close()
                return response.status, response.headers, data

    def _open(self) -> Connection:
        self._conn = self.endpoint.connect()
        self._served = 0
        self.opened += 1
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._served = 0

    def close(self) -> None:
        with self._lock:
            self._close()


class Stream:
    """A streamed GET (server-sent events) on a connection of its own, so that the kept-alive
    one stays free for other calls while it lasts; closed when read to its end or by close()."""

    def __init__(self, endpoint: Endpoint, path: str, headers: Mapping[str, str]) -> None:
        self._conn = endpoint.connect()
        try:
            self._conn.request("GET", endpoint.base + path, headers=dict(headers))
            self._response = self._conn.getresponse()
        except BaseException:
            self._conn.close()
            raise
        self.status = self._response.status
        self.headers = self._response.headers

    def read(self) -> bytes:
        """The whole body (for an answer that is not a stream: a problem)."""
        try:
            return self._response.read()
        finally:
            self.close()

    def lines(self) -> Iterator[str]:
        """The body's lines as they come, without their line ends."""
        try:
            while True:
                line = self._response.readline()
                if not line:
                    return
                yield line.decode("utf-8").rstrip("\r\n")
        finally:
            self.close()

    def close(self) -> None:
        self._conn.close()
