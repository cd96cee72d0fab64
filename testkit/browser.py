"""Debian's chromium driven by Playwright, and a built site served on loopback: what the browser tests
and benchmarks/web_bench.py share. No browser is ever downloaded: Playwright launches
/usr/bin/chromium (apt-get install chromium), with the flags that keep it off the network."""

from __future__ import annotations

import base64
import contextlib
import shutil
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from edgemnist import serve

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if shutil.which(CHROMIUM) is None:
        return f"no {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright (pip install -e '.[dev]')"
    return None


def launch(playwright):
    """Chromium with a fresh profile (Playwright gives each launch a new --user-data-dir)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)


@contextlib.contextmanager
def served(site: Path) -> Iterator[str]:
    """Serve `site` on a free loopback port in a thread; yields its URL."""
    server = serve.make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield serve.url(server)
    finally:
        server.shutdown()
        server.server_close()


class Console:
    """Console errors, uncaught exceptions and failed requests of a page (they must stay empty), and
    the URLs it requested."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}"))


def open_page(browser, url: str, **context_options):
    """A new page at `url`, its model loaded; returns (page, console)."""
    page = browser.new_context(**context_options).new_page()
    console = Console(page)
    page.goto(url)
    page.evaluate("window.edgemnist.ready")
    return page, console


# In the page: MNIST test images (uint8, served at /mnist.bin by a route) -> logits, base64 float32.
RUN_ALL = """async ([n, batch]) => {
  const bytes = new Uint8Array(await (await fetch('/mnist.bin')).arrayBuffer());
  const pixels = Float32Array.from(bytes, (v) => v / 255);
  const out = new Float32Array(n * 10);
  for (let i = 0; i < n; i += batch) {
    const m = Math.min(batch, n - i);
    out.set(await window.edgemnist.classifyPixels(pixels.subarray(i * 784, (i + m) * 784), m), i * 10);
  }
  let s = '';
  const u8 = new Uint8Array(out.buffer);
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
}"""


def logits_in_page(page, images: np.ndarray, batch: int = 10000) -> np.ndarray:
    """Run uint8 [N, 28, 28] images through the page's classifyPixels -> float32 [N, 10]."""
    page.route("**/mnist.bin", lambda route: route.fulfill(body=images.tobytes(), content_type="application/octet-stream"))
    encoded = page.evaluate(RUN_ALL, [len(images), batch])
    return np.frombuffer(base64.b64decode(encoded), np.float32).reshape(len(images), 10)
