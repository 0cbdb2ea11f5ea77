"""HTTP of the live service: fetching dcgm-exporter scrapes and serving ``/metrics``.

Fetching turns every way a reply can go wrong (refused, timed out, HTTP error, not HTTP,
truncated, oversized, not UTF-8) into one :class:`ScrapeError` line. Serving uses
prometheus-client's WSGI app on its threading WSGI server with a listen backlog sized for many
concurrent scrapers (the standard library's default of 5 drops connections under load).
"""

from __future__ import annotations

import concurrent.futures
import errno
import http.client
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from joulecast.errors import JoulecastError
from joulecast.mig.limits import MAX_SCRAPE_BYTES

#: Pending connections the metrics server queues (per listening socket).
LISTEN_BACKLOG = 512
#: Threads that answer ``/metrics`` requests; further connections wait in the backlog.
WORKERS = 16
#: Seconds a metrics client may take to send its request before the connection is dropped.
CLIENT_TIMEOUT_S = 5.0
#: Longest time a rendered ``/metrics`` reply is reused (it is re-rendered after every poll).
RENDER_MAX_AGE_S = 0.1
_CACHE_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ScrapeError(Exception):
    """A dcgm-exporter reply that could not be used (the message is one line)."""


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6); a bare port binds to loopback.

    Raises:
        JoulecastError: On a malformed address or a port outside 0..65535.
    """
    host, _, port = listen.strip().rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise JoulecastError(f"--listen: expected HOST:PORT, got {listen!r}") from None
    if not 0 <= number <= 65535:
        raise JoulecastError(f"--listen: port {number} is outside 0..65535")
    return (host or "127.0.0.1").strip("[]"), number


def check_url(url: str) -> str:
    """Check a dcgm-exporter URL before the first poll.

    Raises:
        JoulecastError: Unless it is ``http(s)://HOST[:PORT]/...``.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise JoulecastError(f"--dcgm-url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JoulecastError(
            f"--dcgm-url: expected http://HOST:PORT/metrics (dcgm-exporter), got {url!r}"
        )
    return url


def fetch_scrape(url: str, timeout_s: float, max_bytes: int = MAX_SCRAPE_BYTES) -> str:
    """One scrape of dcgm-exporter's ``/metrics``.

    Args:
        url: Exporter URL.
        timeout_s: Connect and read timeout.
        max_bytes: Largest reply accepted.

    Returns:
        The exposition text.

    Raises:
        ScrapeError: One line saying what went wrong.
    """
    req = urllib.request.Request(url, headers={"User-Agent": "joulecast-mig-serve"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            if resp.status != 200:
                raise ScrapeError(f"HTTP {resp.status} from {url}")
            if resp.length is not None:
                if resp.length > max_bytes:
                    raise ScrapeError(f"reply of {resp.length} bytes is over {max_bytes}")
                body: bytes = resp.read()
            else:
                body = resp.read(max_bytes + 1)
                if len(body) > max_bytes:
                    raise ScrapeError(f"reply is over {max_bytes} bytes")
    except urllib.error.HTTPError as exc:
        raise ScrapeError(f"HTTP {exc.code} from {url}") from None
    except urllib.error.URLError as exc:
        raise ScrapeError(f"cannot reach {url} ({_reason(exc.reason)})") from None
    except http.client.IncompleteRead as exc:
        raise ScrapeError(
            f"reply truncated ({len(exc.partial)} bytes, {exc.expected} more expected)"
        ) from None
    except http.client.RemoteDisconnected:
        raise ScrapeError(f"{url} closed the connection without a reply") from None
    except http.client.HTTPException as exc:
        raise ScrapeError(f"not an HTTP reply from {url} ({type(exc).__name__})") from None
    except TimeoutError:
        raise ScrapeError(f"no reply from {url} within {timeout_s:g} s") from None
    except OSError as exc:
        raise ScrapeError(f"connection to {url} failed ({_reason(exc)})") from None
    if body and not body.endswith(b"\n"):
        raise ScrapeError("reply does not end in a newline (truncated)")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScrapeError(f"reply is not UTF-8 text (byte {exc.start})") from None


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _reuse_renders(app: WsgiApp, version: Callable[[], int], max_age_s: float) -> WsgiApp:
    """Wrap a WSGI app so that many scrapers share one render per poll.

    A reply is reused for the same request (method, path, query, accepted formats) while
    ``version()`` is unchanged and it is younger than ``max_age_s``; one request renders while
    the others wait for it, so fifty scrapers cost one render, not fifty.
    """
    lock = threading.Lock()
    cache: dict[tuple[str, ...], tuple[float, int, str, list[tuple[str, str]], bytes]] = {}

    def reusing_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        key = tuple(str(environ.get(k, "")) for k in _CACHE_KEYS)
        with lock:
            now, ver = time.monotonic(), version()
            hit = cache.get(key)
            if hit is None or hit[0] < now or hit[1] != ver:
                got: dict[str, Any] = {}

                def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
                    got["status"], got["headers"] = status, headers

                body = b"".join(app(environ, capture))
                if len(cache) >= 32:
                    cache.clear()
                hit = cache[key] = (now + max_age_s, ver, got["status"], got["headers"], body)
        start_response(hit[2], list(hit[3]))
        return [hit[4]]

    return reusing_app


class _Handler(WSGIRequestHandler):
    """Request handler without per-request log lines, with a client timeout."""

    timeout = CLIENT_TIMEOUT_S
    # Buffer the reply: status line, headers and body leave in one send, not five.
    wbufsize = 64 * 1024

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the standard library's access log."""


class _Server(ThreadingWSGIServer):
    """prometheus-client's threading WSGI server: a large backlog, a fixed pool of threads.

    A thread per connection (the default) lets fifty scrapers share the interpreter at once, so
    every one of them finishes late; a pool of :data:`WORKERS` answers them in arrival order
    (p50 7 ms instead of 30 ms, p99 halved in ``benchmarks/bench_mig_serve.py``) and bounds the
    threads a connection flood can create. A client that sends nothing holds a worker for at
    most :data:`CLIENT_TIMEOUT_S`.
    """

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    block_on_close = False
    _pool: concurrent.futures.ThreadPoolExecutor | None = None

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to the pool (called by the serving thread only)."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, "joulecast-metrics")
        try:
            self._pool.submit(self.process_request_thread, request, client_address)
        except RuntimeError:  # shutting down
            self.shutdown_request(request)

    def server_close(self) -> None:
        """Close the socket and let the pool's threads end."""
        super().server_close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def server_bind(self) -> None:
        """Bind without ``socket.getfqdn`` (a reverse DNS lookup at every start)."""
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
        self.setup_environ()


class MetricsServer:
    """``/metrics`` of a prometheus-client registry, served by a daemon thread.

    Args:
        registry: The registry (or collector) to expose.
        host: Address to bind (loopback by default in the CLI).
        port: Port (0 picks a free one).
        version: Changes whenever the data changes (a poll); a render is reused meanwhile for
            at most :data:`RENDER_MAX_AGE_S`. None renders every request.

    Raises:
        JoulecastError: One line when the address cannot be resolved or bound (port in use,
            not an address of this machine, no permission).
    """

    def __init__(
        self,
        registry: Collector,
        host: str,
        port: int,
        version: Callable[[], int] | None = None,
    ) -> None:
        where = f"--listen {host}:{port}"
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise JoulecastError(f"{where}: cannot resolve the host ({exc})") from None

        class Server(_Server):
            address_family = infos[0][0]

        app: WsgiApp = make_wsgi_app(registry)
        if version is not None:
            app = _reuse_renders(app, version, RENDER_MAX_AGE_S)
        try:
            self._server: Any = make_server(host, port, app, Server, handler_class=_Handler)
        except OSError as exc:
            why = {
                errno.EADDRINUSE: "address already in use",
                errno.EADDRNOTAVAIL: "not an address of this machine",
                errno.EACCES: "permission denied",
            }.get(exc.errno or 0, exc.strerror or str(exc))
            raise JoulecastError(f"{where}: cannot listen ({why})") from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    @property
    def server_port(self) -> int:
        """Bound port."""
        return int(self._server.server_port)

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
