"""An operation's extension hooks (`on_operation`, `on_validate`, `on_parse`, `on_execute`), looked up once
per extension class instead of once per request.

Strawberry's context managers ask every extension of every request what kind of hook it has
(`inspect.isgeneratorfunction`, then `isasyncgenfunction`, `iscoroutinefunction`) and wrap the bound
method in a new `contextlib.contextmanager`, which copies the function's name, doc and dict onto a new
wrapper each time: 11 hooks a checkout here, 3% of the server's Python calls a checkout. A class's
hooks never change, so the kind and the wrapper are worked out once per (class, hook) and each
request only binds its own extension instance to them. The hooks that run, their order, and how each
is entered and left are Strawberry's own: only the lookup is shared.

What must never happen here: a wrapper that holds an extension instance (each request's extensions
are its own), or a hook run that Strawberry would not run.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)

HookFactory = Callable[
    [SchemaExtension], contextlib.AbstractContextManager[None] | contextlib.AbstractAsyncContextManager[None]
]

# (extension class, hook name) -> (what makes the hook's context for an instance, whether it is async);
# None where the class leaves the hook at SchemaExtension's default.
_FACTORIES: dict[tuple[type[SchemaExtension], str], tuple[HookFactory, bool] | None] = {}


def _factory(hook: Callable[..., Any]) -> tuple[HookFactory, bool] | None:
    """The context factory for an unbound hook, as Strawberry's `get_hook` would wrap it; None for a hook
    that is not callable (left to Strawberry, which refuses it)."""
    if inspect.isgeneratorfunction(hook):
        return contextlib.contextmanager(hook), False
    if inspect.isasyncgenfunction(hook):
        return contextlib.asynccontextmanager(hook), True
    if not callable(hook):
        return None
    if inspect.iscoroutinefunction(hook):

        @contextlib.asynccontextmanager
        async def awaited(extension: SchemaExtension) -> AsyncIterator[None]:
            await hook(extension)
            yield

        return awaited, True

    @contextlib.contextmanager
    def called(extension: SchemaExtension) -> Iterator[None]:
        hook(extension)
        yield

    return called, False


class _HooksOncePerClass(ExtensionContextManagerBase):
    __slots__ = ()

    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        key = (type(extension), self.HOOK_NAME)
        try:
            known = _FACTORIES[key]
        except KeyError:
            hook = getattr(key[0], self.HOOK_NAME)
            if hook is self.default_hook:
                known = None
            else:
                known = _factory(hook)
                if known is None:
                    return super().get_hook(extension)
            _FACTORIES[key] = known
        if known is None:
            return None
        factory, is_async = known
        return WrappedHook(extension=extension, hook=partial(factory, extension), is_async=is_async)


class OperationHooks(_HooksOncePerClass, OperationContextManager):
    pass


class ValidationHooks(_HooksOncePerClass, ValidationContextManager):
    pass


class ParsingHooks(_HooksOncePerClass, ParsingContextManager):
    pass


class ExecutingHooks(_HooksOncePerClass, ExecutingContextManager):
    pass
