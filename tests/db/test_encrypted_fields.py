"""Personal data at rest: sealed values round-trip, refuse tampering and other columns, keep their
blind index across data key rotation; the models seal on write and read plain; old keys read until
`reseal_all` re-seals every row (plaintext from before included) under the current key, after which
the old key can go; the audit trail accepts no change but a re-sealed source IP.

Rotation runs on a database of its own, in child processes (tests/db/encrypted_rows.py), so the
session's server keeps its keys and its data.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from tortoise import connections
from tortoise.exceptions import BaseORMException

from db.encryption import PREFIX, DataKeys, DecryptionError, generate_key, installed_data_keys, key_id
from db.models import AuditRecord, Customer
from db.reseal import sealed_columns
from tests.db import encrypted_rows
from tests.db.test_migrations import NOW, REPO, child, fresh_database, raw
from tests.testkit import TEST_DATA_INDEX_KEY

__all__ = ["fresh_database"]  # a fixture, used by name

OLD_KEY, NEW_KEY = generate_key(), generate_key()


def keys(*data_keys: str) -> DataKeys:
    return DataKeys.parse(",".join(data_keys), TEST_DATA_INDEX_KEY)


# --- the sealing itself ---------------------------------------------------------------------------


def test_a_sealed_value_opens_to_the_same_text_and_does_not_contain_it() -> None:
    sealed = keys(NEW_KEY).seal("ada@example.com", "customers.email")
    assert sealed.startswith(f"{PREFIX}{key_id(DataKeys.parse(NEW_KEY, TEST_DATA_INDEX_KEY).keys[0])}:")
    assert "ada@example.com" not in sealed  # a fragment as short as "ada" can turn up in random base64
    assert keys(NEW_KEY).open(sealed, "customers.email") == "ada@example.com"
    assert keys(NEW_KEY).seal("ada@example.com", "customers.email") != sealed  # a fresh nonce each time


def test_a_tampered_value_is_refused() -> None:
    sealed = keys(NEW_KEY).seal("198.51.100.23", "orders.checkout_ip")
    body_start = sealed.rindex(":") + 1
    flipped = sealed[: body_start + 5] + ("A" if sealed[body_start + 5] != "A" else "B") + sealed[body_start + 6 :]
    with pytest.raises(DecryptionError, match="failed authentication"):
        keys(NEW_KEY).open(flipped, "orders.checkout_ip")


def test_a_value_copied_to_another_column_is_refused() -> None:
    sealed = keys(NEW_KEY).seal("198.51.100.23", "orders.checkout_ip")
    with pytest.raises(DecryptionError, match="failed authentication"):
        keys(NEW_KEY).open(sealed, "audit_records.source_ip")


def test_an_old_key_opens_what_it_sealed_and_a_dropped_key_is_named() -> None:
    sealed = keys(OLD_KEY).seal("ada@example.com", "customers.email")
    rotating = keys(NEW_KEY, OLD_KEY)
    assert rotating.open(sealed, "customers.email") == "ada@example.com"
    assert not rotating.is_current(sealed) and rotating.is_current(rotating.seal("x", "customers.email"))
    with pytest.raises(DecryptionError, match="PAYQL_DATA_KEYS no longer lists"):
        keys(NEW_KEY).open(sealed, "customers.email")


def test_the_keys_never_show_in_a_repr() -> None:
    shown = repr(keys(NEW_KEY, OLD_KEY)) + str(keys(NEW_KEY, OLD_KEY))
    raw_keys = (*keys(NEW_KEY, OLD_KEY).keys, keys(NEW_KEY).index_key)
    assert not any(repr(key)[2:-1][:12] in shown for key in raw_keys)
    assert NEW_KEY not in shown and OLD_KEY not in shown and TEST_DATA_INDEX_KEY not in shown


def test_plaintext_from_before_encryption_is_read_as_it_is() -> None:
    assert keys(NEW_KEY).open("ada@example.com", "customers.email") == "ada@example.com"


def test_the_blind_index_ignores_case_and_spaces_and_survives_rotation() -> None:
    index = keys(OLD_KEY).blind_index("Ada@Example.com")
    assert keys(NEW_KEY, OLD_KEY).blind_index(" ada@example.COM ") == index
    assert keys(NEW_KEY).blind_index("ada@example.com") == index
    assert keys(NEW_KEY).blind_index("eve@example.com") != index
    assert DataKeys.parse(NEW_KEY, generate_key()).blind_index("ada@example.com") != index


# --- the models on the session's database -----------------------------------------------------------


async def raw_column(table: str, column: str, row_id: object) -> Any:
    rows = await connections.get("default").execute_query_dict(
        f'SELECT "{column}" AS value FROM "{table}" WHERE id = {placeholder()}', [driver_value(row_id)]
    )
    return rows[0]["value"]


async def set_raw_column(table: str, column: str, row_id: object, value: object) -> None:
    p = placeholder
    await connections.get("default").execute_query(
        f'UPDATE "{table}" SET "{column}" = {p(1)} WHERE id = {p(2)}', [value, driver_value(row_id)]
    )


def driver_value(row_id: object) -> object:
    """SQLite's driver takes a UUID as its text."""
    if isinstance(row_id, uuid.UUID) and connections.get("default").capabilities.dialect == "sqlite":
        return str(row_id)
    return row_id


def placeholder(position: int = 1) -> str:
    return f"${position}" if connections.get("default").capabilities.dialect == "postgres" else "?"


async def test_a_customer_email_is_sealed_in_the_row_and_read_plain(server: str) -> None:
    customer = await Customer.create(external_id=f"sealed-{uuid.uuid4()}", email="Grace@Example.com")
    stored = await raw_column("customers", "email", customer.id)
    assert stored.startswith(PREFIX) and "Grace" not in stored
    assert (await Customer.get(id=customer.id)).email == "Grace@Example.com"
    assert [c.id for c in await Customer.with_email(" grace@example.COM")] == [customer.id]
    assert await Customer.filter(email="Grace@Example.com").count() == 0  # the sealed column never matches


async def test_changing_the_email_moves_its_blind_index(server: str) -> None:
    customer = await Customer.create(external_id=f"moves-{uuid.uuid4()}", email="first@example.com")
    customer.email = "second@example.com"
    await customer.save(update_fields=["email"])
    assert await Customer.with_email("first@example.com").count() == 0
    assert [c.id for c in await Customer.with_email("second@example.com")] == [customer.id]


async def test_a_row_tampered_with_in_the_database_is_refused_on_read(server: str) -> None:
    customer = await Customer.create(external_id=f"tampered-{uuid.uuid4()}", email="victim@example.com")
    other = await Customer.create(external_id=f"donor-{uuid.uuid4()}", email="attacker@example.com")
    await set_raw_column("customers", "email", customer.id, await raw_column("customers", "email", other.id))
    assert (await Customer.get(id=customer.id)).email == "attacker@example.com"  # same column: a swap is possible
    stored = await raw_column("customers", "email", customer.id)
    flipped = stored[:-10] + ("B" if stored[-10] == "A" else "A") + stored[-9:]
    await set_raw_column("customers", "email", customer.id, flipped)
    with pytest.raises(DecryptionError, match=r"customers\.email"):
        await Customer.get(id=customer.id)


async def test_a_plaintext_row_from_before_encryption_still_reads(server: str) -> None:
    customer = await Customer.create(external_id=f"legacy-{uuid.uuid4()}", email="sealed@example.com")
    await set_raw_column("customers", "email", customer.id, "legacy@example.com")
    assert (await Customer.get(id=customer.id)).email == "legacy@example.com"


async def test_the_audit_trail_accepts_only_a_resealed_source_ip(server: str) -> None:
    record = await AuditRecord.create(
        actor="customer:c-1", action="order.created", entity_type="order", entity_id="o-1", source_ip="203.0.113.9"
    )
    assert (await raw_column("audit_records", "source_ip", record.id)).startswith(PREFIX)
    for value in ("203.0.113.66", None):
        with pytest.raises(BaseORMException, match="audit_records rows are append-only"):
            await set_raw_column("audit_records", "source_ip", record.id, value)
    with pytest.raises(BaseORMException, match="audit_records rows are append-only"):
        await connections.get("default").execute_query(
            f"UPDATE audit_records SET source_ip = {placeholder(1)}, actor = 'admin:x' WHERE id = {placeholder(2)}",
            [installed_data_keys().seal("203.0.113.9", "audit_records.source_ip"), record.id],
        )
    resealed = installed_data_keys().seal("203.0.113.9", "audit_records.source_ip")
    await set_raw_column("audit_records", "source_ip", record.id, resealed)
    stored = await AuditRecord.get(id=record.id)
    assert (stored.source_ip, stored.actor) == ("203.0.113.9", "customer:c-1")


def test_every_personal_data_column_is_sealed(server: str) -> None:
    assert {c.associated_data for c in sealed_columns()} == {
        "audit_records.source_ip",
        "customers.email",
        "dispute_notes.body",
        "disputes.evidence",
        "fulfillments.tracking_number",
        "idempotency_records.recovery_point",
        "merchant_endpoints.previous_secret",
        "merchant_endpoints.secret",
        "orders.checkout_ip",
        "orders.checkout_user_agent",
        "webhook_events.body",
    }


# --- rotation on a database of its own ---------------------------------------------------------------


async def rows_child(action: str, url: str, *data_keys: str, check: bool = True) -> Any:
    environment = os.environ | {"PYTHONPATH": str(REPO), "PAYQL_DATA_KEYS": ",".join(data_keys)}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.db.encrypted_rows", action, url],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if not check:
        return result
    assert result.returncode == 0, f"{action} failed:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


async def sealed_values(url: str) -> dict[str, list[str]]:
    """Every stored non-null value of every sealed column, as the database holds it."""
    async with raw(url) as db:
        return {
            column.associated_data: [
                str(value)
                for (value,) in await db.fetch(
                    f'SELECT "{column.column}" FROM "{column.table}" WHERE "{column.column}" IS NOT NULL'
                )
            ]
            for column in sealed_columns()
        }


async def test_rotation_reseals_every_row_and_the_old_key_can_then_go(fresh_database: str, server: str) -> None:
    url = fresh_database
    await child("migrate", url)
    await rows_child("seed", url, OLD_KEY)
    old_id, new_id = key_id(keys(OLD_KEY).keys[0]), key_id(keys(NEW_KEY).keys[0])
    before = await sealed_values(url)
    assert all(before.values()), before  # one row at least in every sealed column
    assert {value[: len(PREFIX) + 8] for values in before.values() for value in values} == {f"{PREFIX}{old_id}"}
    # Rows from before encryption: plaintext, and without a blind index.
    async with raw(url) as db:
        await db.insert(
            "customers",
            {"id": uuid.uuid4(), "external_id": "legacy", "email": "legacy@example.com", "gateway_references": {}}
            | {"created_at": NOW},
        )
        await db.insert(
            "audit_records",
            {"actor": "customer:legacy", "action": "order.created", "entity_type": "order", "entity_id": "o-2"}
            | {"reason": "", "source_ip": "203.0.113.50", "data": {}, "created_at": NOW},
        )

    expected = {
        "emails": sorted([encrypted_rows.EMAIL, "legacy@example.com"]),
        "orders": [[encrypted_rows.IP, encrypted_rows.USER_AGENT]],
        "evidence": [encrypted_rows.EVIDENCE],
        "notes": [encrypted_rows.NOTE],
        "tracking": [encrypted_rows.TRACKING],
        "webhooks": [encrypted_rows.WEBHOOK_BODY],
        "recovery": [encrypted_rows.RECOVERY],
        "audit_ips": sorted([encrypted_rows.IP, "203.0.113.50"]),
        "signing_secrets": [encrypted_rows.SIGNING_SECRETS],
    }
    while_rotating = await rows_child("read", url, NEW_KEY, OLD_KEY)
    assert {k: v for k, v in while_rotating.items() if k != "by_index"} == expected
    assert while_rotating["by_index"] == {" ada.lovelace@EXAMPLE.com": ["ada"], "legacy@example.com": []}

    first = await rows_child("rotate", url, NEW_KEY, OLD_KEY)
    assert first["customers.email"] == [2, 1, 0]  # both sealed anew; the legacy row gets its index
    assert first["audit_records.source_ip"] == [2, 0, 0]
    assert all(
        counts == [1, 0, 0]
        for column, counts in first.items()
        if column not in {"customers.email", "audit_records.source_ip"}
    ), first
    again = await rows_child("rotate", url, NEW_KEY, OLD_KEY)
    assert all(counts == [0, 0, 0] for counts in again.values()), again

    after = await sealed_values(url)
    assert {value[: len(PREFIX) + 8] for values in after.values() for value in values} == {f"{PREFIX}{new_id}"}
    assert {column: len(values) for column, values in after.items()} == {
        column: len(values) for column, values in before.items()
    } | {"customers.email": 2, "audit_records.source_ip": 2}

    without_old = await rows_child("read", url, NEW_KEY)
    assert {k: v for k, v in without_old.items() if k != "by_index"} == expected
    assert without_old["by_index"] == {" ada.lovelace@EXAMPLE.com": ["ada"], "legacy@example.com": ["legacy"]}
    only_old = await rows_child("read", url, OLD_KEY, check=False)
    assert only_old.returncode != 0 and "PAYQL_DATA_KEYS no longer lists" in only_old.stderr
