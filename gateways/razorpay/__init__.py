"""Razorpay: Orders answered by Razorpay Checkout in the shopper's browser, payments, refunds, disputes and
webhooks, through the official `razorpay` SDK (see `adapter.py`)."""
