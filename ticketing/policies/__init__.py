"""Policies: plain functions that say what may happen to an order, and why not."""
