"""Notification items signed the way Adyen signs them: the SDK's own `Adyen.util.generate_notification_sig`
(HMAC-SHA256 with the hex key over Adyen's fixed field order), as the emulator's sending side."""

from __future__ import annotations

from typing import Any

from Adyen.util import generate_notification_sig


def signed(item: dict[str, Any], hmac_key_hex: str) -> dict[str, Any]:
    """`item` with `additionalData.hmacSignature` set (the signature never covers additionalData itself)."""
    unsigned = {key: value for key, value in item.items() if key != "additionalData"}
    signature = generate_notification_sig(unsigned, hmac_key_hex).decode()
    return {**item, "additionalData": {**item.get("additionalData", {}), "hmacSignature": signature}}
