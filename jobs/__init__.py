"""Background work: processing stored webhook events, dispatching the outbox, sweeping and
reconciling. Job functions are the same in both ways of running: in-process asyncio tasks
(embedded default) or a Redis-backed saq queue with separate `payql worker` processes.

The database is the truth: a job carries only an id, every job is idempotent, and a lost job is
found again by the sweeper.
"""
