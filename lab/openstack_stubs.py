"""Stand-ins for glance, neutron and a VNC server, for tests that boot servers on nova's
fake driver.

These are NOT glance, neutron or a hypervisor's console: they store nothing, check no
token and answer only the few requests nova 34 makes when it boots and lists servers with
`"networks": "none"`, and what nova-novncproxy does once it accepted a console token:

- glance: nova-api reads the image of every boot (python-glanceclient builds its model
  from `/v2/schemas/image`); the fake driver never downloads it. One image, IMAGE_ID.
- neutron: nova asks for ports even without networks (security groups of
  `GET /servers/detail`, clean-up on delete). Every GET answers an empty collection named
  after the path's last segment (`/v2.0/ports?device_id=...` → `{"ports": []}`); DELETE
  answers 204.
- vnc: the fake driver's console is `fakevncconsole.com:6969` (the lab's /etc/hosts maps
  that name to 127.0.0.1). nova-novncproxy sends `CONNECT <internal_access_path>`; the
  stand-in answers 200 and the RFB 3.8 version string, which the proxy relays to its
  websocket client: the client's proof that the proxy accepted the token.

Standard library only, so it runs under any python3 (the OpenStack venv's or Debian's):

    python3 openstack_stubs.py glance|neutron|vnc PORT [ADDRESS]  # 127.0.0.1 by default
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
IMAGE_ID = "00000000-0000-4000-8000-00000000cafe"
VNC_PORT = 6969  # the fake driver's console port (validate_console_port checks it)
RFB_VERSION = b"RFB 003.008\n"
_STAMP = "2026-01-01T00:00:00Z"
IMAGE = {
    "id": IMAGE_ID,
    "name": "hakit-stub-image",
    "status": "active",
    "visibility": "public",
    "disk_format": "raw",
    "container_format": "bare",
    "size": 1024,
    "virtual_size": None,
    "min_disk": 0,
    "min_ram": 0,
    "protected": False,
    "owner": "admin",
    "checksum": None,
    "os_hidden": False,
    "tags": [],
    "created_at": _STAMP,
    "updated_at": _STAMP,
    "self": f"/v2/images/{IMAGE_ID}",
    "file": f"/v2/images/{IMAGE_ID}/file",
    "schema": "/v2/schemas/image",
}
_TYPES = {
    "size": ["integer", "null"],
    "virtual_size": ["integer", "null"],
    "min_disk": "integer",
    "min_ram": "integer",
    "protected": "boolean",
    "os_hidden": "boolean",
    "tags": "array",
    "checksum": ["string", "null"],
}
#: glanceclient's model; nova keeps the names listed here as image attributes, the rest
#: would become image properties
IMAGE_SCHEMA = {
    "name": "image",
    "properties": {key: {"type": _TYPES.get(key, "string")} for key in IMAGE},
    "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
}


def versions(port: int, version: str, path: str) -> dict[str, object]:
    """The version document at `/`: one CURRENT version at `path`."""
    href = f"http://{HOST}:{port}{path}"
    return {
        "versions": [{"id": version, "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]
    }


class Stub(BaseHTTPRequestHandler):
    """JSON answers for `service` (glance or neutron); access lines go to stderr."""

    service = ""
    port = 0

    def answer(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def not_found(self) -> None:
        self.answer(404, {"error": {"code": 404, "message": f"{self.service} stub: not here"}})

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if self.service == "glance":
            if path in ("", "/versions"):
                self.answer(200, versions(self.port, "v2.16", "/v2/"))
            elif path == "/v2/schemas/image":
                self.answer(200, IMAGE_SCHEMA)
            elif path == "/v2/images":
                self.answer(200, {"images": [IMAGE]})
            elif path == f"/v2/images/{IMAGE_ID}":
                self.answer(200, IMAGE)
            else:
                self.not_found()
        elif path == "":
            self.answer(200, versions(self.port, "v2.0", "/v2.0/"))
        else:
            self.answer(200, {path.rpartition("/")[2].removesuffix(".json"): []})

    def do_DELETE(self) -> None:
        if self.service == "neutron":
            self.answer(204)
        else:
            self.not_found()


class VncStub(socketserver.BaseRequestHandler):
    """`CONNECT path` → 200, then the RFB version; reads until the proxy closes."""

    def connected(self, path: str) -> None:
        """A proxy opened the console at `path` (its token's internal_access_path)."""
        sys.stderr.write(f"CONNECT {path}\n")

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(30)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n")[0].decode(errors="replace")
            self.connected(line.removeprefix("CONNECT ").removesuffix(" HTTP/1.1"))
            sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + RFB_VERSION)
            while sock.recv(4096):  # the proxy relays the client's bytes until it closes
                pass
        except OSError:
            pass


class VncServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


class StubServer(ThreadingHTTPServer):
    """A burst of boots (hundreds of nova calls at once) waits in the listen queue
    instead of finding it full (the default queue of 5 drops connections)."""

    request_queue_size = 128


def serve(service: str, port: int, host: str = HOST) -> None:
    if service == "vnc":
        VncServer((host, port), VncStub).serve_forever()
    if service not in ("glance", "neutron"):
        raise SystemExit(f"unknown service {service!r}: glance, neutron or vnc")
    handler = type(f"{service.title()}Stub", (Stub,), {"service": service, "port": port})
    StubServer((host, port), handler).serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or not sys.argv[2].isdigit():
        raise SystemExit("usage: openstack_stubs.py glance|neutron|vnc PORT [ADDRESS]")
    serve(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
