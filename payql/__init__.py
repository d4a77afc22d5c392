"""PayQL wiring: settings, the app factory and lifespan, auth, pub/sub, logging and the CLI.

Business rules never live here; this package only connects the layers.
"""
