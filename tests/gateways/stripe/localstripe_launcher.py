"""Start localstripe in this process, with its state file where the tests say.

localstripe (GPL-3) is a dev-only test double: PayQL code never imports it; the tests run this file as a
separate process. localstripe pickles its whole store to one fixed file in the system's temporary folder after
every write, which concurrent runs would share, so this launcher points the store at
`PAYQL_LOCALSTRIPE_STATE` before starting the server with `--from-scratch` (no state read at start).

Usage: python localstripe_launcher.py <port>   (with PAYQL_LOCALSTRIPE_STATE set to a file path)
"""

from __future__ import annotations

import os
import pickle
import sys

from localstripe import resources, server


def main() -> None:
    state_path = os.environ["PAYQL_LOCALSTRIPE_STATE"]
    port = sys.argv[1]

    def dump_to_disk(store: resources.Store) -> None:
        with open(state_path, "wb") as file:
            pickle.dump(store, file, protocol=pickle.HIGHEST_PROTOCOL)

    def try_load_from_disk(store: resources.Store) -> None:
        return None

    resources.Store.dump_to_disk = dump_to_disk
    _accept_automatic_payment_methods()
    resources.Store.try_load_from_disk = try_load_from_disk
    sys.argv = ["localstripe", "--port", port, "--from-scratch"]
    server.start()


def _accept_automatic_payment_methods() -> None:
    """localstripe predates `automatic_payment_methods` and refuses unknown parameters; the adapter sends
    `{"enabled": true, "allow_redirects": "never"}` when there is no return URL (what real Stripe needs to
    confirm without one). Accept and ignore it: localstripe never redirects anyway."""
    original = resources.PaymentIntent.__init__

    def init(self: resources.PaymentIntent, *args: object, automatic_payment_methods: object = None, **kwargs: object):
        original(self, *args, **kwargs)

    resources.PaymentIntent.__init__ = init


if __name__ == "__main__":
    main()
