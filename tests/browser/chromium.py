"""Debian's Chromium as every browser run here starts it (browser tests, screenshot script).

The network flags matter: without them Chromium calls Google's services at start, and this
machine's closed network refuses those connections many at a time.
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
