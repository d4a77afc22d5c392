"""Domain primitives shared by every layer: money, normalized statuses, card-number detection.

Nothing here does I/O or imports from the database, the gateways or the web layer.
"""
