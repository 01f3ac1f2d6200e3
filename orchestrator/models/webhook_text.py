"""What a trigger's URL and headers may hold (README: "Triggers").

Checked when the inventory is loaded, so that a URL no client can send to is an error naming its
line (exit 3) rather than a failure at the end of a rollout; and, for header values, again once
``${VAR}`` is expanded, since an environment variable can hold what the file could not. No message
here ever quotes a header value: it may be, or hold, a credential.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import SplitResult, urlsplit

# RFC 9110's token: what a header name is made of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# One DNS label; `_` is taken too (some internal names have it, and resolvers pass it on).
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_MAX_HOST_NAME = 253
CONTROL_PROBLEM = "holds a carriage return, line feed or other control character"


def header_name_problem(name: str) -> str | None:
    if _TOKEN.fullmatch(name):
        return None
    return (
        f"header name '{name.encode('unicode_escape').decode('ascii')}' is not a valid HTTP "
        "header name (letters, digits and !#$%&'*+-.^_`|~)"
    )


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a header value, in words that do not quote it; or None.

    CR and LF would end the header and start another (or the body): the request splitting that
    made urllib print the whole value in its error. The other controls h11 refuses too; beyond
    Latin-1 there are no bytes to send."""
    for character in value:
        point = ord(character)
        if (point < 0x20 and character != "\t") or point == 0x7F:
            return CONTROL_PROBLEM
        if point > 0xFF:
            return "holds a character beyond Latin-1, which a header cannot carry"
    return None


def url_problem(url: str) -> str | None:
    """Why no notification can be sent to ``url``, or None. Never quotes the URL whole: its
    query may hold a token."""
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        return "the URL holds a space or control character (percent-encode it)"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced [ or ] around an IPv6 address
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        if not parts.scheme:
            return "the URL has no scheme: it starts with http:// or https://"
        return f"scheme '{parts.scheme}' is not http or https"
    if "@" in parts.netloc:
        return (
            "credentials in the URL are not allowed: a URL is shown in messages; send them in a "
            'header whose value comes from the environment, e.g. Authorization: "Basic ${VAR}"'
        )
    return _host_problem(parts) or _port_problem(parts)


def _host_problem(parts: SplitResult) -> str | None:
    host = parts.hostname
    if not host:
        return "the URL has no host"
    if not _valid_host(host, bracketed=parts.netloc.startswith("[")):
        return f"host '{host}' is not a valid host name or IP address"
    return None


def _valid_host(host: str, bracketed: bool) -> bool:
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    if all(part.isdigit() for part in host.split(".")):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    try:
        # An internationalised name as it travels (what the `idna` codec refuses, no client sends).
        name = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return False
    name = name.removesuffix(".")  # a fully qualified name
    labels = name.split(".")
    return len(name) <= _MAX_HOST_NAME and all(_LABEL.fullmatch(label) for label in labels)


def _port_problem(parts: SplitResult) -> str | None:
    try:
        port = parts.port
    except ValueError:  # out of 0-65535, or not a number
        port = 0
    if port is None or port > 0:
        return None
    return f"port {parts.netloc.rpartition(':')[2]} is not in 1-65535"
