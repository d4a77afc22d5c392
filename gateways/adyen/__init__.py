"""Adyen (Checkout API v72) as a PayQL gateway package: see `adapter.py`."""

from gateways.adyen.adapter import AdyenGateway

__all__ = ["AdyenGateway"]
