"""Tortoise models of the outgoing webhooks: the merchant's endpoints, the events announced to them,
one delivery per event and endpoint, and every attempt at a delivery.

Signing secrets are sealed at rest (`EncryptedTextField`); nothing else here is personal data, since
an event holds the object as GraphQL shows it to staff. Events and deliveries are written in the same
transaction as the change they announce (`db.merchant_events`); only `jobs.merchant_delivery` moves a
delivery's status afterwards.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from tortoise import fields
from tortoise.models import Model

from db.fields import EncryptedTextField, enum_field


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"  # not tried yet, or leased by a dispatcher right now
    FAILED = "FAILED"  # the last attempt failed; retried at next_attempt_at
    DELIVERED = "DELIVERED"  # a 2xx answer
    DEAD = "DEAD"  # no attempts left, or the endpoint was disabled or removed: only a resend revives it


class MerchantEndpoint(Model):
    """A URL of the merchant systems that receives signed events."""

    id = fields.UUIDField(primary_key=True)
    url = fields.CharField(max_length=2048)
    description = fields.CharField(max_length=500, default="")
    # Event types sent to this endpoint; ["*"] sends every type.
    event_types: Any = fields.JSONField(default=list)
    enabled = fields.BooleanField(default=True)
    disabled_reason = fields.CharField(max_length=500, null=True)
    secret = EncryptedTextField()
    # The secret before the last roll, still signed with until it expires (the overlap window).
    previous_secret = EncryptedTextField(null=True)
    previous_secret_expires_at = fields.DatetimeField(null=True)
    # The first failed attempt since the last delivered one: an endpoint failing too long is disabled.
    failing_since = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "merchant_endpoints"


class MerchantEvent(Model):
    """One announced change: the envelope sent to every subscribed endpoint, byte for byte."""

    id = fields.BigIntField(primary_key=True)
    public_id = fields.CharField(max_length=64, unique=True)  # "evt_…", the envelope's id
    type = fields.CharField(max_length=64)
    object_type = fields.CharField(max_length=32)
    object_id = fields.CharField(max_length=64, db_index=True)
    object_version = fields.BigIntField()
    # At most one event per key: the same fact applied twice announces it once.
    dedupe_key = fields.CharField(max_length=255, unique=True)
    body = fields.TextField()  # the JSON envelope exactly as signed and sent
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    deliveries: fields.ReverseRelation[MerchantDelivery]

    class Meta:
        table = "merchant_events"


class MerchantObjectVersion(Model):
    """The last version announced for an object: it only grows, and outlives pruned events."""

    id = fields.BigIntField(primary_key=True)
    object_type = fields.CharField(max_length=32)
    object_id = fields.CharField(max_length=64)
    version = fields.BigIntField(default=0)

    class Meta:
        table = "merchant_object_versions"
        unique_together = (("object_type", "object_id"),)


class MerchantDelivery(Model):
    """One event to one endpoint, retried until delivered or dead."""

    id = fields.BigIntField(primary_key=True)
    event: fields.ForeignKeyRelation[MerchantEvent] = fields.ForeignKeyField(
        "models.MerchantEvent", related_name="deliveries", on_delete=fields.CASCADE
    )
    event_id: int
    endpoint: fields.ForeignKeyRelation[MerchantEndpoint] = fields.ForeignKeyField(
        "models.MerchantEndpoint", related_name="deliveries", on_delete=fields.CASCADE
    )
    endpoint_id: UUID
    status = enum_field(DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "merchant_deliveries"
        unique_together = (("event_id", "endpoint_id"),)
        indexes = (("status", "next_attempt_at"), ("endpoint_id", "created_at"))


class MerchantDeliveryAttempt(Model):
    """One HTTP request of a delivery: what the endpoint answered, and how fast."""

    id = fields.BigIntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[MerchantDelivery] = fields.ForeignKeyField(
        "models.MerchantDelivery", related_name="attempt_rows", on_delete=fields.CASCADE
    )
    delivery_id: int
    number = fields.IntField()
    status_code = fields.IntField(null=True)
    latency_ms = fields.IntField(null=True)
    response_excerpt = fields.TextField(default="")  # the start of the answer's body
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "merchant_delivery_attempts"
        indexes = (("delivery_id",),)
