"""The chaos campaign (issue #14): a seeded, randomized run of checkouts, payOrders, refunds, subscription
sign-ups and renewals against a throwaway PayQL stack of real processes while faults are injected, then the
invariants that must hold after the faults stop and reconciliation runs. The seed fixes the operations and
the order of the faults; each fault lands while a wave of requests is in flight, so exactly which request it
hits varies from run to run. `tests/features/test_chaos.py` runs a small one on each backend; `bench/chaos.py`
runs a large one and prints its figures. Every fault hits the campaign's own servers (its own
database, its own `redis-server`, its own `payql` processes), never the shared ones."""
