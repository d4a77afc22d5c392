"""The official `braintree` SDK, imported once with its import-time DeprecationWarning silenced.

`braintree.dispute` and `braintree.dispute_search` warn while their own class bodies run (deprecated
constants they define for themselves), so any
import of the SDK warns; PayQL treats warnings as errors in tests. Every module of this package (and the tests'
emulator) imports the SDK through here, before anything else imports it.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # Only the SDK's own import: a deprecation it warns about for its own class bodies, not for our calls.
    warnings.simplefilter("ignore", DeprecationWarning)
    import braintree

__all__ = ["braintree"]
