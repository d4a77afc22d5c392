"""The Braintree gateway package: settings, the adapter over the official SDK, webhooks, disputes."""
