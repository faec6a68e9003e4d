"""Log formatting: UTC timestamps, control characters encoded (no forged log lines)."""

from __future__ import annotations

import logging
import time


class UTCFormatter(logging.Formatter):
    # A staticmethod, as logging.Formatter expects: a plain function would bind to self.
    converter = staticmethod(time.gmtime)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + (
            f".{int(record.msecs):03d}Z"
        )


class ControlCharacterFilter(logging.Filter):
    """Render CR, LF and other control characters visibly so input cannot forge log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(ord(c) < 32 and c != "\t" for c in message):
            record.msg = "".join(
                c if ord(c) >= 32 or c == "\t" else f"\\x{ord(c):02x}" for c in message
            )
            record.args = None
        return True
