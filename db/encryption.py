"""Personal data at rest: authenticated encryption of column values, and the keyed hash (blind index)
that finds a row by such a value without decrypting every row.

A stored value is `payql:v1:<key id>:<base64url(nonce || AES-256-GCM ciphertext and tag)>`. The key
id names which of the configured keys sealed it, so reading works with any listed key and the
rotation knows, without decrypting, which rows still use an old one. The associated data is the
column (`<table>.<column>`): a value copied into another column does not decrypt. Values written
before encryption was enabled have no prefix and are read as they are until `payql keys rotate`
seals them.

The blind index key is separate from the data keys and does not rotate with them: an index made with
it stays valid while the data keys change.

Never here: writing plaintext to an encrypted column, returning a value whose tag fails, logging a
key or a decrypted value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "payql:v1:"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_CHARS = 8


class DataKeyError(ValueError):
    """Key material that is not a base64 32-byte key (the message never contains the key)."""


class DecryptionError(RuntimeError):
    """A sealed value that no configured key opens: tampered with, or sealed with a key no longer listed."""


class DataKeysNotInstalled(RuntimeError):
    """An encrypted column was written or a sealed value read before the process installed its keys."""


def decode_key(text: str) -> bytes:
    """A base64 (standard or URL-safe, padding optional) 32-byte key."""
    cleaned = text.strip()
    try:
        raw = base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise DataKeyError("not base64") from None
    if len(raw) != KEY_BYTES:
        raise DataKeyError(f"a key is {KEY_BYTES} bytes of base64, this one is {len(raw)}")
    return raw


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def key_id(key: bytes) -> str:
    """A short public name for a key: a hash of it, so no registry of names is needed."""
    return hashlib.sha256(b"payql data key id\x00" + key).hexdigest()[:KEY_ID_CHARS]


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def sealed_key_id(stored: str) -> str | None:
    """The id of the key that sealed `stored`; None for a plaintext value from before encryption."""
    if not is_sealed(stored):
        return None
    return stored[len(PREFIX) :].partition(":")[0]


@dataclass(frozen=True)
class DataKeys:
    """The data keys, the current (sealing) one first, and the blind index key."""

    # Never in a repr: a DataKeys that reaches a log line or a traceback's locals shows no key.
    keys: tuple[bytes, ...] = field(repr=False)
    index_key: bytes = field(repr=False)
    # Each key's cipher by its id, made once: every order, audit record and customer read or written
    # seals or opens a value, and making the cipher and hashing the key each time cost more than
    # the encryption itself.
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise DataKeyError("at least one data key is needed")
        ids = [key_id(key) for key in self.keys]
        if len(set(ids)) != len(ids):
            raise DataKeyError("a data key is listed twice")
        if len(self.index_key) != KEY_BYTES:
            raise DataKeyError(f"the index key is {KEY_BYTES} bytes")
        object.__setattr__(self, "_ciphers", {id_: AESGCM(key) for id_, key in zip(ids, self.keys, strict=True)})

    @classmethod
    def parse(cls, keys: str, index_key: str) -> DataKeys:
        """From `PAYQL_DATA_KEYS` (comma-separated, current first) and `PAYQL_DATA_INDEX_KEY`."""
        return cls(tuple(decode_key(part) for part in keys.split(",") if part.strip()), decode_key(index_key))

    @property
    def current_id(self) -> str:
        return next(iter(self._ciphers))

    def seal(self, plaintext: str, column: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        current_id, cipher = next(iter(self._ciphers.items()))
        sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), column.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{PREFIX}{current_id}:{body}"

    def open(self, stored: str, column: str) -> str:
        """The plaintext of a sealed value, or a pre-encryption plaintext value as it is."""
        if not is_sealed(stored):
            return stored
        wanted, _, body = stored[len(PREFIX) :].partition(":")
        cipher = self._ciphers.get(wanted)
        if cipher is None:
            raise DecryptionError(f"{column}: sealed with key {wanted}, which PAYQL_DATA_KEYS no longer lists")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError(f"{column}: a sealed value failed authentication (tampered or corrupt)") from None
        return plain.decode("utf-8")

    def is_current(self, stored: str) -> bool:
        return sealed_key_id(stored) == self.current_id

    def blind_index(self, value: str) -> str:
        """HMAC-SHA256 of the normalized value (trimmed, case-folded): equal values, equal index."""
        normalized = value.strip().casefold().encode("utf-8")
        return hmac.new(self.index_key, normalized, hashlib.sha256).hexdigest()


_installed: DataKeys | None = None


def install_data_keys(keys: DataKeys) -> None:
    """Make `keys` the process's keys (at start-up, before the database is used)."""
    global _installed
    _installed = keys


def installed_data_keys() -> DataKeys:
    if _installed is None:
        raise DataKeysNotInstalled("no data keys installed: the process did not load PAYQL_DATA_KEYS")
    return _installed
