"""What `benchmarks/scale_locustfile.py`'s users need of a browser and an authenticator: the
hidden fields (CSRF and one-time form tokens) of a page's form, and the TOTP code of the moment.
Standard library only (imported by locust's process, and by the tests without locust).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time
import urllib.parse

INPUT = re.compile(r"<input\b[^>]*>", re.S)
ATTR = re.compile(r'([a-zA-Z_-]+)="([^"]*)"')
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits): what the agent's authenticator shows now."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden inputs (tokens) of the POST form posting to `action` (or to the page itself)."""
    for attrs, body in FORM.findall(html):
        form = dict(ATTR.findall(attrs))
        if form.get("method", "").lower() != "post":
            continue
        target = urllib.parse.urlsplit(form.get("action", "")).path
        if target and not target.endswith(action):  # no action: the page's own URL
            continue
        fields = {}
        for tag in INPUT.findall(body):
            a = dict(ATTR.findall(tag))
            if a.get("type") == "hidden" and a.get("name"):
                fields[a["name"]] = a.get("value", "")
        return fields
    return {}
