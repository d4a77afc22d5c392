"""A model base for append-only tables: rows are inserted once and never updated or deleted.

Python refuses it here; PostgreSQL also refuses it with triggers created by a migration.
"""

from __future__ import annotations

from typing import Any

from tortoise.models import Model


class AppendOnlyViolation(RuntimeError):
    pass


class AppendOnlyModel(Model):
    async def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._saved_in_db:
            await super().save(*args, **kwargs)
            return
        raise AppendOnlyViolation(f"{type(self).__name__} rows are append-only")

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        raise AppendOnlyViolation(f"{type(self).__name__} rows are append-only")

    class Meta:
        abstract = True
