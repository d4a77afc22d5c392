"""Adyen's error answer, `ServiceError` (`{status, errorCode, message, errorType, pspReference}`), shared by the
emulator's Checkout and Disputes routes, and the PSP references it makes."""

from __future__ import annotations

import secrets


class ServiceError(Exception):
    """Adyen's error answer: `{status, errorCode, message, errorType, pspReference}`."""

    def __init__(self, status: int, code: str, message: str, kind: str = "validation") -> None:
        super().__init__(message)
        self.body = {
            "status": status,
            "errorCode": code,
            "message": message,
            "errorType": kind,
            "pspReference": psp_reference(),
        }


def psp_reference() -> str:
    return secrets.token_hex(8).upper()
