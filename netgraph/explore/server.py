"""The explorer as a small local web page, ``python -m netgraph.explore NET.npz`` (:mod:`netgraph.explore.__main__`).

The server is the standard library's :class:`http.server.ThreadingHTTPServer`: the page is one file of
HTML and JavaScript (:mod:`netgraph.explore.page`) and a few endpoints that answer PNG or JSON, so no web
framework is worth a dependency. It binds to 127.0.0.1 by default, and answers only requests whose
``Host`` is the address it serves (a page elsewhere cannot reach it through a name that points here).

Endpoints (every one checks its parameters; a wrong one is a 4xx answer with a one-line plain-text message):

========================================  =================================================================
``GET /``                                 the page
``GET /info``                             JSON: latent size, picture shape, whether pictures can be encoded,
                                          how many pictures the server holds, the limits
``GET /decode?z=Z[&scale=S]``             PNG: the picture of the code Z (latent-size numbers, commas between)
``GET /sample?temperature=T[&seed=N]``    JSON ``{"z": [...]}``: a draw z ~ N(0, T² I)
``GET /picture?index=I[&scale=S]``        PNG: the server's picture number I
``GET /encode?index=I``                   JSON ``{"z": [...]}``: the code of picture number I
``POST /encode``                          JSON ``{"z": [...]}``: the code of the uploaded picture (the body:
                                          a PNG, JPEG, ... file of at most ``upload_limit`` bytes)
``GET /interpolate?a=Z&b=Z[&steps=N]``    PNG: the strip of N pictures from code a to code b,
``[&kind=linear|spherical][&scale=S]``    linear (lerp) or spherical (slerp)
========================================  =================================================================

Example:
    >>> import json, threading, urllib.request
    >>> import layers as L
    >>> from netgraph import NetChain
    >>> from netgraph.explore import Explorer
    >>> server = make_server(Explorer(NetChain([L.LinearLayer((1, 2, 2))], input=2)), port=0)
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()
    >>> json.load(urllib.request.urlopen(server.url + "info"))["latent_size"]
    2
    >>> try:
    ...     urllib.request.urlopen(server.url + "decode?z=1,nan")
    ... except urllib.error.HTTPError as err:
    ...     print(err.code, err.read().decode().strip())
    400 z: number 2 is nan, not a finite number
    >>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..layer import NetError
from .core import Explorer, png
from .page import PAGE

__all__ = ["UPLOAD_LIMIT", "ExplorerServer", "make_server", "serve"]

#: The largest upload accepted, in bytes (a picture to encode; MNIST-sized pictures are a few hundred bytes).
UPLOAD_LIMIT = 2 * 1024 * 1024
#: Seconds a connection may stay silent before it is dropped (a slow client holds one thread, not the server).
SOCKET_TIMEOUT = 20.0
#: Query parameters each GET endpoint takes, and which of them it needs.
PARAMETERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "/": ((), ()),
    "/index.html": ((), ()),
    "/info": ((), ()),
    "/decode": (("z", "scale"), ("z",)),
    "/sample": (("temperature", "seed"), ()),
    "/picture": (("index", "scale"), ("index",)),
    "/encode": (("index",), ("index",)),
    "/interpolate": (("a", "b", "steps", "kind", "scale"), ("a", "b")),
}
POST_PATHS = ("/encode",)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a one-line message for the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ExplorerServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that holds the :class:`Explorer` and knows its own address."""

    daemon_threads = True  # a request in progress does not keep the process alive after Ctrl-C
    allow_reuse_address = True

    def __init__(self, explorer: Explorer, address: tuple[str, int], upload_limit: int = UPLOAD_LIMIT) -> None:
        self.explorer = explorer
        self.upload_limit = int(upload_limit)
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        self.host, self.port = str(host), int(port)
        self.allowed_hosts = {self.host.lower(), *(LOOPBACK_NAMES if _is_loopback(self.host) else ())}

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _host_name(header: str) -> str:
    """The name part of a Host header: ``127.0.0.1:8000`` → ``127.0.0.1``, ``[::1]:80`` → ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Handler(BaseHTTPRequestHandler):
    """Answers the explorer's endpoints; every refusal is a short plain-text 4xx, never a traceback."""

    server: ExplorerServer
    server_version = "netgraph-explore"
    sys_version = ""
    timeout = SOCKET_TIMEOUT
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(message)s\n"

    # --- answers ------------------------------------------------------------------------------------------------

    def _answer(self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error as one line of plain text (http.server's own ones too: a bad request line, ...)."""
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        text = message or status.phrase
        self.log_error("%d %s", code, text)
        self.close_connection = True
        body = f"{text}\n".encode("utf-8", "replace")
        try:
            self.send_response(status, status.phrase)
            self.send_header("Content-Type", self.error_content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            if status == HTTPStatus.METHOD_NOT_ALLOWED:
                allowed = "GET, POST" if urlsplit(self.path or "").path in POST_PATHS else "GET"
                self.send_header("Allow", allowed)
            self.end_headers()
            if getattr(self, "command", None) != "HEAD" and status.value >= 200:
                self.wfile.write(body)
        except OSError:  # the client went away
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        if getattr(self.server, "quiet", False):
            return
        sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    # --- dispatch -----------------------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Callable[[], None]:
        """Any other method (PUT, DELETE, PATCH, OPTIONS, ...): 405, not http.server's 501."""
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command} not allowed: the explorer takes GET"
                        + (" and POST" if urlsplit(self.path).path in POST_PATHS else ""))  # fmt: skip

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._run(self._get)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self._run(self._get)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._run(self._post)

    def _run(self, action: Callable[[], None]) -> None:
        try:
            self._check_host()
            action()
        except RequestError as err:
            self.send_error(err.status, err.message)
        except NetError as err:  # a value the explorer refuses: its message says which and why
            self.send_error(HTTPStatus.BAD_REQUEST, str(err))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - a defect: logged here, a short 500 there, the server goes on
            self.log_error("internal error on %s: %r", self.path, err)
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (logged on the server)")

    def _check_host(self) -> None:
        host = _host_name(self.headers.get("Host", ""))
        if host not in self.server.allowed_hosts:
            raise RequestError(HTTPStatus.FORBIDDEN, f"Host {host!r} is not this server; use {self.server.url}")

    def _query(self, path: str, query: str) -> dict[str, str]:
        if path not in PARAMETERS:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no page {path[:80]!r}; the explorer is at /")
        takes, needs = PARAMETERS[path]
        try:
            parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=16)
        except ValueError as err:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"a malformed query string ({err})") from None
        for name, values in parsed.items():
            if name not in takes:
                accepted = ", ".join(takes) if takes else "no parameters"
                raise RequestError(HTTPStatus.BAD_REQUEST, f"{path} takes {accepted}; got {name[:40]!r}")
            if len(values) > 1:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"{path}: {name} is given {len(values)} times")
        for name in needs:
            if name not in parsed:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"{path} needs {name}")
        return {name: values[0] for name, values in parsed.items()}

    def _get(self) -> None:
        url = urlsplit(self.path)
        q = self._query(url.path, url.query)
        explorer = self.server.explorer
        scale = explorer.check_scale(q.get("scale", 1))
        if url.path in ("/", "/index.html"):
            self._answer(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif url.path == "/info":
            info = {**explorer.describe(), "upload_limit": self.server.upload_limit}
            self._json(info)
        elif url.path == "/decode":
            self._png(explorer.decode_png(q["z"], scale))
        elif url.path == "/sample":
            seed = explorer.check_seed(q["seed"]) if "seed" in q else None
            drawn = explorer.sample(explorer.check_temperature(q.get("temperature", 1)), seed)
            self._json({"z": drawn.z.tolist()})
        elif url.path == "/picture":
            self._png(_png(explorer, explorer.images[explorer.check_index(q["index"])], scale))  # type: ignore[index]
        elif url.path == "/encode":
            self._json({"z": explorer.code_of(q["index"]).tolist()})
        elif url.path == "/interpolate":
            self._png(explorer.strip_png(q["a"], q["b"], q.get("steps", 8), q.get("kind", "linear"), scale))

    def _post(self) -> None:
        url = urlsplit(self.path)
        if url.path not in POST_PATHS:
            if url.path in PARAMETERS:
                raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{url.path} takes GET; POST goes to /encode")
            raise RequestError(HTTPStatus.NOT_FOUND, f"no page {url.path[:80]!r}; the explorer is at /")
        if url.query:
            raise RequestError(HTTPStatus.BAD_REQUEST, "POST /encode takes no parameters: the body is the picture")
        explorer = self.server.explorer
        if not explorer.can_encode:
            raise RequestError(HTTPStatus.BAD_REQUEST, "this net is a bare decoder: it cannot encode pictures")
        data = self._body()
        self._json({"z": explorer.encode(explorer.read_upload(data)).tolist()})

    def _body(self) -> bytes:
        limit = self.server.upload_limit
        if self.headers.get("Transfer-Encoding"):
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "uploads need a Content-Length (no chunked bodies)")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "uploads need a Content-Length")
        if not length.strip().isdigit():
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length {length[:40]!r} is not a number of bytes")
        size = int(length)
        if size > limit:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"an upload of {size:,} bytes; at most {limit:,} are accepted"
            )
        if size == 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, "an empty upload: the body is the picture file")
        data = self.rfile.read(size)
        if len(data) != size:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"the upload ended after {len(data)} of {size} bytes")
        return data

    def _png(self, body: bytes) -> None:
        self._answer(HTTPStatus.OK, body, "image/png")

    def _json(self, value: Any) -> None:
        self._answer(HTTPStatus.OK, json.dumps(value).encode(), "application/json")


def _png(explorer: Explorer, array: Any, scale: int) -> bytes:
    return png(explorer.picture(array, scale))


def make_server(
    explorer: Explorer,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    upload_limit: int = UPLOAD_LIMIT,
    quiet: bool = False,
) -> ExplorerServer:
    """An :class:`ExplorerServer` bound to ``host``:``port`` (port 0: a free one; see ``.url``), not yet serving.

    Raises:
        NetError: the address cannot be bound (in use, or not this machine's), or the upload limit is not positive.
    """
    if not isinstance(upload_limit, int) or upload_limit < 1:
        raise NetError(f"upload_limit: a positive number of bytes; got {upload_limit!r}")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise NetError(f"port: a number from 0 to 65535 (0: any free port); got {port!r}")
    try:
        server = ExplorerServer(explorer, (host, port), upload_limit)
    except OSError as err:
        raise NetError(f"cannot serve on {host}:{port}: {err.strerror or err}") from None
    server.quiet = quiet  # type: ignore[attr-defined]
    return server


def serve(server: ExplorerServer, out: Any = None) -> int:
    """Serve until Ctrl-C, then close the socket; returns 0 (the exit status of a clean stop)."""
    out = out or sys.stdout
    print(f"the explorer of {server.explorer.where} is at {server.url}  (Ctrl-C stops it)", file=out, flush=True)
    if not _is_loopback(server.host):
        print(f"NOTE: {server.host} is reachable from other machines; the explorer has no login", file=out, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("stopped", file=out, flush=True)
    finally:
        server.server_close()
    return 0
