"""One email address, read from a string that may be hostile, or a clear refusal.

A customer's address comes from an unvalidated JWT `email` claim and the sender from settings, so
`parse_mailbox` takes nothing on trust and guesses nothing: it accepts exactly one mailbox, written
`local@domain`, `<local@domain>` or `Display Name <local@domain>` (a name with specials in double
quotes), and raises `InvalidAddress` otherwise, with a reason that does not repeat the address.

- No control character anywhere (C0, DEL, C1, U+2028/2029): refused, never stripped.
- Local part: a dot-atom of RFC 5322 atext, at most 64 characters. Quoted local parts are refused
  (legal, but unused in practice and a favourite of filter bypasses). A non-ASCII local part is
  refused: it needs SMTPUTF8 end to end, which PayQL does not send (the relays it hands mail to
  need not support it, and a 7-bit message cannot carry it in the To header).
- Domain: host name labels (letters, digits, inner hyphens; 1-63 characters each, 253 in all).
  An internationalised domain is converted to its A-labels with IDNA 2008 + UTS #46 (`idna`), so
  the message and the envelope stay ASCII; the standard library's codec is IDNA 2003, which maps
  `faß.example` to a different domain, `fass.example`. Address literals (`[127.0.0.1]`) are refused.
- Display name: any printable text; non-ASCII becomes an RFC 2047 encoded word in `header`.

Nothing here sends or reads the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import formataddr

import idna

MAX_INPUT = 512  # a name and an address fit; a megabyte claim is refused before any parsing
MAX_LOCAL = 64
MAX_DOMAIN = 253
MAX_ADDRESS = 254  # RFC 5321's path limit (256) minus the angle brackets

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_NAME_SPECIALS = re.compile(r'[()<>\[\]:;@\\,"]')
_QUOTED_PAIR = re.compile(r"\\(.)")


class InvalidAddress(ValueError):
    """Not exactly one well-formed mailbox; the message says why."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    name: str  # the display name, possibly empty or non-ASCII
    address: str  # ASCII `local@domain`, the domain in A-labels: fit for the SMTP envelope

    @property
    def header(self) -> str:
        """The header value: ASCII, the name quoted or RFC 2047-encoded as it needs."""
        return formataddr((self.name, self.address), charset="utf-8")


def parse_mailbox(raw: str) -> Mailbox:
    if len(raw) > MAX_INPUT:
        raise InvalidAddress("longer than any address")
    if CONTROL.search(raw):
        raise InvalidAddress("contains a control character")
    text = raw.strip()
    if not text:
        raise InvalidAddress("empty")
    if text.endswith(">"):
        opening = text.rfind("<")
        if opening < 0:
            raise InvalidAddress("'>' without '<'")
        name, spec = _display_name(text[:opening].strip()), text[opening + 1 : -1]
    else:
        name, spec = "", text
    return Mailbox(name, _addr_spec(spec))


def _display_name(text: str) -> str:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"') or _unescaped_quote(text[1:-1]):
            raise InvalidAddress("the display name's quotes do not match")
        return _QUOTED_PAIR.sub(r"\1", text[1:-1])
    if "," in text or ";" in text:
        raise InvalidAddress("exactly one address is allowed")
    if _NAME_SPECIALS.search(text):
        raise InvalidAddress("the display name has special characters outside double quotes")
    return text


def _unescaped_quote(inner: str) -> bool:
    unpaired = _QUOTED_PAIR.sub("", inner)  # what is left besides backslash pairs must be plain text
    return '"' in unpaired or "\\" in unpaired


def _addr_spec(spec: str) -> str:
    if "," in spec or ";" in spec or spec.count("@") > 1:
        raise InvalidAddress("exactly one address is allowed")
    local, at, domain = spec.partition("@")
    if not at or not local or not domain:
        raise InvalidAddress("needs a local part, '@' and a domain")
    if not local.isascii():
        raise InvalidAddress("a non-ASCII local part needs SMTPUTF8, which PayQL does not send")
    if len(local) > MAX_LOCAL or not _DOT_ATOM.fullmatch(local):
        raise InvalidAddress("the local part is not a dot-atom of letters, digits and !#$%&'*+/=?^_`{|}~- (64 at most)")
    domain = _ascii_domain(domain)
    if len(domain) > MAX_DOMAIN or not _HOST.fullmatch(domain):
        raise InvalidAddress("the domain is not a host name")
    address = f"{local}@{domain}"
    if len(address) > MAX_ADDRESS:
        raise InvalidAddress("longer than any address")
    return address


def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        if any(label.lower().startswith("xn--") and not _valid_a_label(label) for label in domain.split(".")):
            raise InvalidAddress("the domain has an invalid IDNA label")
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidAddress("the internationalised domain is not valid IDNA") from exc


def _valid_a_label(label: str) -> bool:
    try:
        idna.decode(label)
    except idna.IDNAError:
        return False
    return True
