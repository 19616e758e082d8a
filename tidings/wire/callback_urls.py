"""What a callback URL stored on an account or a number must look like.

The Account API's settings and the Numbers API's `moHttpUrl` both store a URL that webhooks are later
sent to, so both refuse the same things: anything but an absolute http(s) URL with a host, white
space or control characters (which no HTTP request line can carry), and very long values."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


def callback_url_problem(value: str) -> str | None:
    """Why `value` cannot be a callback URL, or None when it can."""
    if len(value) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters."
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "must not contain white space or control characters."
    try:
        parts = urlsplit(value)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    return None if valid else "must be an absolute http or https URL, or empty to unset."
