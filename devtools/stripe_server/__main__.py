"""`python -m devtools.stripe_server --port 12111 --db var/stripe.sqlite ...`"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from .app import create_app
from .config import StripeServerConfig
from .runner import bind_socket


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stripe_server", description="Stripe-compatible server for development."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--db", help="SQLite file that keeps state across restarts")
    parser.add_argument("--api-key", default=StripeServerConfig().api_key)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default=StripeServerConfig().webhook_secret)
    parser.add_argument("--rate-limit", type=float, help="requests per second before 429s")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--pending-refund-settle-seconds", type=float, default=1.0)
    parser.add_argument("--refund-fail-after-seconds", type=float, default=1.0)
    parser.add_argument(
        "--webhook-retry-time-scale",
        type=float,
        default=1.0,
        help="shrink Stripe's three-day webhook retry schedule (1/8640: three days in 30 s)",
    )
    parser.add_argument("--webhook-max-attempts", type=int, help="give up on a webhook after this many tries")
    args = parser.parse_args(argv)
    if args.db:
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    config = StripeServerConfig(
        api_key=args.api_key,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        rate_limit_per_second=args.rate_limit,
        fault_rate=args.fault_rate,
        seed=args.seed,
        latency_ms=args.latency_ms,
        db_path=args.db,
        pending_refund_settle_seconds=args.pending_refund_settle_seconds,
        refund_fail_after_seconds=args.refund_fail_after_seconds,
        webhook_retry_time_scale=args.webhook_retry_time_scale,
        webhook_max_attempts=args.webhook_max_attempts,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger(__name__).info(
        "stripe server on http://%s:%d (db: %s, webhooks: %s)",
        args.host,
        args.port,
        args.db or "memory",
        args.webhook_url or "off",
    )
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False))
    server.run(sockets=[bind_socket(args.host, args.port)])


if __name__ == "__main__":
    main()
