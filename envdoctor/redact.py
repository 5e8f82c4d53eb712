"""Credentials in URLs (https://user:secret@host/simple) never leave envdoctor: every text we
print or write passes through here. As pip does: a password becomes ****, and a user name
alone (often a token) becomes **** too."""

import re

# scheme://userinfo@ ; userinfo stops at the first "/", "@" or white space, as in a URL's
# authority part. Quotes and brackets end it too, so a URL inside repr() or markdown is found.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/@\s'\"<>()\[\]]+)@")


def _hide(match: "re.Match[str]") -> str:
    user, sep, _password = match.group("info").partition(":")
    shown = "%s:****" % user if sep else "****"
    return "%s%s@" % (match.group("scheme"), shown)


def redact_text(text: str) -> str:
    """``text`` with the password (or lone user name) of every URL in it replaced by ****."""
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO.sub(_hide, text)


def redact_url(url: str) -> str:
    return redact_text(url)
