"""Contract tests of the Stripe-compatible dev server, runnable against real Stripe."""
