"""Payment gateways: one protocol (`base.py`), shared types and errors, one package per provider.

Adapters are stateless towards PayQL: they never import `db` or the settings, and never write our
database. Their configuration is passed in by `payql.wiring`.
"""
