"""Settings of the Stripe-compatible dev server.

Times are in seconds unless the name says otherwise; every knob that a test may
want to change while the server runs also has a hook on `StripeServer`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class StripeServerConfig(BaseModel):
    """How the server authenticates, misbehaves and delivers webhooks."""

    api_key: str = "sk_test_ticketops"
    webhook_url: str | None = None
    webhook_secret: str = "whsec_ticketops_dev"
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # "before": the request fails before it runs (nothing happens, nothing is
    # stored). "after": it runs and its idempotent result is stored, but the
    # caller gets a 500, as when a response is lost on the way back.
    # "rate_limited": a 429 instead; "slow": the request waits `fault_delay_seconds` first.
    fault_mode: Literal["before", "after", "rate_limited", "slow"] = "before"
    fault_delay_seconds: float = Field(default=30.0, ge=0.0)
    seed: int = 0
    latency_ms: int = Field(default=0, ge=0)
    pending_refund_settle_seconds: float = Field(default=1.0, ge=0.0)
    refund_fail_after_seconds: float = Field(default=1.0, ge=0.0)
    db_path: str | None = None
    # Webhook retries as in Stripe's live mode: exponential back-off for up to
    # three days after the event (Stripe does not publish the intervals; ours
    # double from one minute up to eight hours, about 17 attempts in all).
    # `webhook_retry_time_scale` compresses the whole schedule for tests:
    # 1/8640 turns three days into 30 s. `webhook_max_attempts` caps the count.
    webhook_retry_base_seconds: float = Field(default=60.0, gt=0.0)
    webhook_retry_max_interval_seconds: float = Field(default=8 * 3600.0, gt=0.0)
    webhook_retry_horizon_seconds: float = Field(default=3 * 24 * 3600.0, gt=0.0)
    webhook_retry_time_scale: float = Field(default=1.0, gt=0.0)
    webhook_max_attempts: int | None = Field(default=None, ge=1)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0.0)
    # How often the background task settles due refunds and delivers events.
    tick_seconds: float = Field(default=0.05, gt=0.0)
