"""Webhook endpoints in the database: the signing secrets are sealed at rest, the previous secret signs
only during its overlap, and event types are checked and normalized."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections

from db.encryption import PREFIX
from db.merchant_endpoints import UnknownEventType, create_endpoint, live_secrets, normalize_event_types, roll_secret
from db.merchant_models import MerchantEndpoint
from db.transitions import Actor

pytestmark = pytest.mark.usefixtures("server")

STAFF = Actor("admin:db-test")


async def test_signing_secrets_are_sealed_at_rest() -> None:
    url = f"https://hooks.example/{uuid.uuid4().hex}"  # a URL of its own finds its row in raw SQL
    endpoint, secret = await create_endpoint(url, "", ["order.paid"], STAFF)
    try:
        rolled = await roll_secret(endpoint.id, timedelta(hours=1), STAFF)
        assert rolled is not None
        _, rows = await connections.get("default").execute_query(
            f"SELECT secret, previous_secret FROM merchant_endpoints WHERE url = '{url}'"
        )
        stored = [value for row in rows for value in (row["secret"], row["previous_secret"])]
        assert stored and all(value.startswith(PREFIX) for value in stored)
        assert secret not in str(stored) and rolled[1] not in str(stored)
        reread = await MerchantEndpoint.get(id=endpoint.id)
        assert (reread.secret, reread.previous_secret) == (rolled[1], secret)
    finally:
        await MerchantEndpoint.filter(id=endpoint.id).delete()


def test_the_previous_secret_signs_only_during_its_overlap() -> None:
    now = datetime.now(UTC)
    endpoint = MerchantEndpoint(secret="whsec_new", previous_secret="whsec_old", previous_secret_expires_at=now)
    assert live_secrets(endpoint, now - timedelta(seconds=1)) == ["whsec_new", "whsec_old"]
    assert live_secrets(endpoint, now) == ["whsec_new"]
    assert live_secrets(MerchantEndpoint(secret="whsec_only"), now) == ["whsec_only"]


def test_event_types_are_checked_and_normalized() -> None:
    assert normalize_event_types([]) == ["*"]
    assert normalize_event_types(["order.paid", "*"]) == ["*"]
    assert normalize_event_types([" order.paid", "order.paid", "refund.failed"]) == ["order.paid", "refund.failed"]
    with pytest.raises(UnknownEventType, match=r"order\.shipped"):
        normalize_event_types(["order.paid", "order.shipped"])
