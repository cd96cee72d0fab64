"""`edgemnist web serve`: a static file server for a built site.  [runtime side]

Loopback by default (IPv4 or IPv6); the MIME types a module script and WebAssembly need
(`application/wasm` lets the browser compile while downloading); the precompressed .br/.gz siblings
sent when the browser accepts them; `Cache-Control: no-cache` with an ETag, so a rebuilt site is never
mixed with a stale one and an unchanged file (the 2.7 MB wasm) is answered 304, not sent again.
Only regular files inside the site are served: no symlink out of it, no `..`, not site.json (it names
local paths). A client that hangs up mid-transfer is the client's business: no traceback.
"""

from __future__ import annotations

import errno
import functools
import http.server
import ipaddress
import os
import socket
import sys
import urllib.parse
from pathlib import Path

from edgemnist import UserError, first_line
from edgemnist.progress import say

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


PRIVATE = {"site.json"}  # what a site was built from, with local paths: for `serve`, not for browsers


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    timeout = 30  # seconds a connection may stay silent: a client that never finishes its request is dropped

    def send_head(self):
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if rel.endswith("/"):
            rel += "index.html"
        path = self._inside_site(Path(self.translate_path(rel)))  # translate_path drops `..`
        if path is None or path.suffix in (".gz", ".br") or path.name in PRIVATE and path.parent == self._root():
            self.send_error(404, "not found")
            return None
        accepted = accepted_encodings(self.headers.get("Accept-Encoding"))
        body, encoding = path, None
        for name, suffix in ENCODINGS:
            sibling = self._inside_site(path.with_name(path.name + suffix))
            if name in accepted and sibling is not None:
                body, encoding = sibling, name
                break
        try:
            f = open(body, "rb")
        except OSError:
            self.send_error(404, "not found")
            return None
        st = os.fstat(f.fileno())  # of the file being sent: a rebuild in between cannot skew the length
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}-{encoding or "identity"}"'
        if etag in (self.headers.get("If-None-Match") or ""):
            f.close()
            self.send_response(304)
            self._common_headers(path, etag)
            self.end_headers()
            return None
        self.send_response(200)
        self.send_header("Content-Length", str(st.st_size))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self._common_headers(path, etag)
        self.end_headers()
        return f

    def _common_headers(self, path: Path, etag: str) -> None:
        self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
        self.send_header("ETag", etag)
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Cache-Control", "no-cache")

    def _root(self) -> Path:
        return Path(self.directory)  # resolved once, in make_server

    def _inside_site(self, path: Path) -> Path | None:
        """`path` resolved, when it is a regular file inside the site (symlinks followed), else None."""
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a NUL byte
            return None
        return resolved if resolved.is_file() and resolved.is_relative_to(self._root()) else None

    def log_message(self, format, *args):  # quiet: the URL is what the user needs
        pass


class SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that hung up mid-transfer is not an error; anything else is one line, not a traceback."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            say(f"warning: a request from {client_address[0]} failed: {type(error).__name__}: {first_line(error)}")


class SiteServer6(SiteServer):
    address_family = socket.AF_INET6


def make_server(site: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """Bind the server (port 0 picks a free one); UserError (exit 2) when the port is taken."""
    handler = functools.partial(SiteHandler, directory=str(Path(site).resolve()))  # the site may not exist yet
    try:
        return (SiteServer6 if ":" in host else SiteServer)((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use: pick another with --port") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"cannot listen on {host}: no such local address (--host)") from None
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def url(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (a name other than localhost counts as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
