"""Loopback HTTP endpoints where the hub expects HubKit's service Deployments: the hub checks each external
service's URL at start (and routes /services/<name>/ to it); here they answer like a healthy service,
record every path asked for, and can be told to answer one path otherwise (the keepalive's /health, say)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    service_name: str
    paths: list[str]
    answers: dict[str, tuple[int, Any]]


class _Health(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        default = (200, {"service": self.server.service_name, "healthy": True})
        status, document = self.server.answers.get(self.path, default)
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class StandIns:
    def __init__(self) -> None:
        self.servers: dict[str, _Server] = {}

    def start(self, name: str) -> str:
        server = _Server(("127.0.0.1", 0), _Health)
        server.service_name, server.paths, server.answers = name, [], {}
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers[name] = server
        return f"http://127.0.0.1:{server.server_address[1]}"

    def answer(self, name: str, path: str, status: int, document: Any) -> None:
        """From now on, answer GET ``path`` on service ``name`` with this status and JSON document."""
        self.servers[name].answers[path] = (status, document)

    def paths(self, name: str) -> list[str]:
        """Every path service ``name`` was asked for, in order."""
        return list(self.servers[name].paths)

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
