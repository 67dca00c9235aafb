"""URIs as records show them: without the credentials a tracking or storage URI may embed."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
# Query parameters that carry credentials in database and object-store URIs.
_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|sig|key|credential|auth", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """``uri`` without credentials, for logs, manifests and summaries.

    Tracking and storage URIs may embed a user and password (``postgresql://u:p@host/db``)
    or a token in the query (``?password=…``, ``?sig=…``); records that outlive the run
    must not hold them.
    """
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(key, REDACTED if _SECRET_QUERY_KEY.search(key) else value) for key, value in pairs],
            safe="*/:",
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return uri
    return urlunsplit(parts._replace(netloc=netloc, query=query))
