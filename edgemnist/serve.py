"""`edgemnist web serve`: a static file server for a built site.  [runtime side]

Loopback by default; the MIME types a module script and WebAssembly need (`application/wasm` lets the
browser compile while downloading); the precompressed .br/.gz siblings sent when the browser accepts
them; `Cache-Control: no-cache` so a rebuilt site is never mixed with a stale one.
"""

from __future__ import annotations

import errno
import functools
import http.server
import urllib.parse
from pathlib import Path

from edgemnist import UserError

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".png": "image/png",
}
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))  # preferred first


def accepted_encodings(header: str | None) -> set[str]:
    """Content codings an Accept-Encoding header allows (q=0 refuses one)."""
    out = set()
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        q = params.strip().removeprefix("q=")
        if name and not (params and q.replace(".", "", 1).isdigit() and float(q) == 0):
            out.add(name.strip().lower())
    return out


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if rel.endswith("/"):
            rel += "index.html"
        path = Path(self.translate_path(rel))  # normalised inside the site directory
        if not path.is_file() or path.suffix in (".gz", ".br"):
            self.send_error(404, "not found")
            return None
        accepted = accepted_encodings(self.headers.get("Accept-Encoding"))
        body, encoding = path, None
        for name, suffix in ENCODINGS:
            sibling = path.with_name(path.name + suffix)
            if name in accepted and sibling.is_file():
                body, encoding = sibling, name
                break
        f = open(body, "rb")
        self.send_response(200)
        self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(body.stat().st_size))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        return f

    def log_message(self, format, *args):  # quiet: the URL is what the user needs
        pass


def make_server(site: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """Bind the server (port 0 picks a free one); UserError (exit 2) when the port is taken."""
    handler = functools.partial(SiteHandler, directory=str(site))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use: pick another with --port") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"cannot listen on {host}: no such local address (--host)") from None
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
