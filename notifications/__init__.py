"""Side effects sent from the outbox: mailers, email templates and the exactly-once dispatcher.

The outbox row is the truth. A message is rendered and sent after the transaction that wrote it
has committed; `dispatch_outbox_message` claims it with a lease, sends outside any lock and marks
it SENT, so duplicate jobs and concurrent dispatchers send it once.
"""
