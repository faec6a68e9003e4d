"""The API's JSON parser: JSON whose strings are all text the database can store.

JSON may escape a lone UTF-16 surrogate (`"\\ud800"`), which Python decodes to a string that
cannot be encoded as UTF-8: PostgreSQL (and the e-mail, the logs) would refuse it deep inside a
service, a 500 instead of a clear answer. Such a body is refused here, as malformed, once for
every endpoint. A surrogate *pair* (`"\\ud83d\\ude00"`) is one real character and is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

LONE_SURROGATE_DETAIL = "The body holds a lone UTF-16 surrogate (\\ud800-\\udfff), not text."


def holds_lone_surrogate(data: Any) -> bool:
    """Tell whether any string in the parsed JSON (keys included) cannot be encoded as UTF-8."""
    try:
        # C-speed walk of the whole document: a batch of 1,000 members takes about a millisecond.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class TextJSONParser(JSONParser):
    """DRF's JSON parser, refusing a body with a lone surrogate as malformed (400)."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if holds_lone_surrogate(data):
            raise ParseError(LONE_SURROGATE_DETAIL)
        return data
