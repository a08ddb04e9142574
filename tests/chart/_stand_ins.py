"""Loopback HTTP endpoints where the hub expects HubKit's service Deployments: the hub checks each external
service's URL at start (and routes /services/<name>/ to it); here they answer like a healthy service."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"service": self.server.service_name, "healthy": True}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class StandIns:
    def __init__(self) -> None:
        self.servers: list[ThreadingHTTPServer] = []

    def start(self, name: str) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
        server.service_name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
