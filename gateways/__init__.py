"""Payment gateways: one protocol (`base.py`), shared types and errors, one package per provider.

Each provider folder describes itself in its `package.py` (the contract in `package.py` here: settings,
factory, webhook verifier, capabilities, public configuration); `catalog.py` finds the folders by name.
Adapters are stateless towards PayQL: they never import `db` or PayQL's settings, and never write our
database. Their configuration comes from their own package's settings class, through its factory.
"""
