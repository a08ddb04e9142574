"""A threaded HTTP server on 127.0.0.1 served from a daemon thread: the plumbing of the honest
stand-ins for outside services (fake GitHub, fake OIDC provider, LMS simulator)."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's own thread: a browser's idle speculative connection
        # must not hold up the accept loop.
        if self.tls is not None and isinstance(request, socket.socket):
            request.settimeout(10)
            request = self.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)


class LoopbackHTTPServer:
    """Bind at construction (so the port is known at once); serve after ``start()``.

    With ``tls`` (a server-side context) it serves https on the same loopback port.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        name: str,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self._server = _Server(("127.0.0.1", port), handler)
        self._server.tls = tls
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def scheme(self) -> str:
        return "http" if self._server.tls is None else "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
