"""The API's JSON parser: JSON a service can take, or a 400 `malformed-body` problem.

DRF's parser refuses what is not JSON; two more bodies are JSON and would still fail deep inside
a service, a 500 instead of a clear answer, so they are refused here, once for every endpoint:

- a lone UTF-16 surrogate (`"\\ud800"`): Python decodes it to a string that cannot be encoded as
  UTF-8, which PostgreSQL (and the e-mail, the logs) refuse. A surrogate *pair*
  (`"\\ud83d\\ude00"`) is one real character and is accepted;
- arrays or objects nested deeper than Python's recursion limit (`[[[[...]]]]`): the decoder
  raises RecursionError, which DRF does not catch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

LONE_SURROGATE_DETAIL = "The body holds a lone UTF-16 surrogate (\\ud800-\\udfff), not text."
TOO_DEEP_DETAIL = "The body nests arrays or objects too deeply."


def holds_lone_surrogate(data: Any) -> bool:
    """Tell whether any string in the parsed JSON (keys included) cannot be encoded as UTF-8."""
    try:
        # C-speed walk of the whole document: a batch of 1,000 members takes about a millisecond.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class TextJSONParser(JSONParser):
    """DRF's JSON parser, refusing lone surrogates and runaway nesting as malformed (400)."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
            lone_surrogate = holds_lone_surrogate(data)
        except RecursionError:
            raise ParseError(TOO_DEEP_DETAIL) from None
        if lone_surrogate:
            raise ParseError(LONE_SURROGATE_DETAIL)
        return data
