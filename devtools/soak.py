"""The fault soak: every kind of traffic at once through the API, while everything breaks.

`make soak` (or `python -m devtools.soak --minutes 5`) starts its own stack on free ports in
a fresh directory (Temporal dev server on a db file, the Stripe stand-in, the SMTP sink, two
workers, the API), seeds demo orders with real payment intents (cards that refund at once,
go pending, fail later), and for the traffic phase sends refunds (full and per ticket),
cancellations with refund, reissues, resends, personalisation links, one bulk delivery and
one event cancellation, while it:

- SIGKILLs a worker several times and starts it again;
- restarts the Temporal server on its db file;
- takes the SMTP relay down for 30 s, and has it answer 451 to some recipients (signals);
- has the processor answer 500 before acting, 500 after acting, 429, and slower than the
  payment timeout (the stand-in's admin switches);
- locks the SQLite database for a few seconds (an exclusive transaction from outside).

Then the faults stop, the system is left to settle, and the oracle runs: `ticketops audit`
over the store, the processor's window and the relay's .eml files. Any finding fails the
soak. The last line is the figures: traffic, faults, doubled, lost, impossible, duplicate
Message-IDs, stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools.stack import Ports, Stack, port_open
from devtools.stripe_server.admin_client import StripeAdmin
from devtools.stripe_server.config import StripeServerConfig

# The recipients the relay answers 451 while deferral is on (demo buyers' addresses end in a digit).
DEFER_MATCHING = r"[37]@"
FAST = {
    # Refunds poll and time out in seconds, so a soak of minutes sees every path end.
    "TICKETOPS_REFUNDS__POLL_INITIAL_SECONDS": "1",
    "TICKETOPS_REFUNDS__POLL_MAX_SECONDS": "3",
    "TICKETOPS_REFUNDS__PAYMENT_TIMEOUT_SECONDS": "4",
    "TICKETOPS_BULK__DEFERRED_RETRY_SECONDS": "3",
    "TICKETOPS_BULK__HEARTBEAT_SECONDS": "5",
    "TICKETOPS_AUTH__RATE_LIMIT_PER_MINUTE": "100000",
    "TICKETOPS_LOG_LEVEL": "WARNING",
}


def log(text: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


class Soak:
    def __init__(self, stack: Stack, *, seconds: float, seed: int) -> None:
        self.stack = stack
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.traffic: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.api_errors = 0
        self.stop_traffic = asyncio.Event()
        self.http: httpx.AsyncClient
        self.stripe = StripeAdmin(f"http://127.0.0.1:{stack.ports.stripe}", StripeServerConfig().api_key)

    # --- traffic ------------------------------------------------------------------------------

    async def call(self, kind: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        try:
            resp = await self.http.request(method, url, **kw)
        except httpx.HTTPError:
            self.traffic[f"{kind}:unanswered"] += 1  # the API restarted or the server was away
            return None
        outcome = "accepted" if resp.status_code < 300 else "refused" if resp.status_code < 500 else "5xx"
        if resp.status_code >= 500:
            self.api_errors += 1
            if "problem+json" not in resp.headers.get("content-type", ""):
                self.traffic["5xx-not-problem"] += 1
        self.traffic[f"{kind}:{outcome}"] += 1
        return resp

    async def refund(self, code: str, body: dict[str, Any]) -> None:
        preview = await self.call("preview", "POST", f"/orders/{code}/refunds/preview", json=body)
        if preview is None or preview.status_code != 200:
            return
        key = {"Idempotency-Key": uuid.uuid4().hex}
        await self.call(
            f"refund-{body['kind']}", "POST", f"/orders/{code}/refunds",
            json={**body, "quote_hash": preview.json()["quote_hash"]}, headers=key,
        )

    async def one_action(self, order: dict[str, Any]) -> None:
        code = order["code"]
        view = await self.call("read", "GET", f"/orders/{code}")
        if view is None or view.status_code != 200:
            return
        tickets = [t["id"] for t in view.json()["tickets"] if t["status"] == "valid"]
        key = {"Idempotency-Key": uuid.uuid4().hex}
        action = self.rng.choice(["full", "tickets", "cancel", "reissue", "resend", "resend", "personalise"])
        if action == "full":
            await self.refund(code, {"kind": "full", "reason": "soak: customer request"})
        elif action == "tickets" and tickets:
            await self.refund(code, {"kind": "tickets", "ticket_ids": tickets[:1], "reason": "soak: one ticket"})
        elif action == "cancel":
            await self.call(
                "cancel", "POST", f"/orders/{code}/cancel", json={"reason": "soak: cancel", "refund": True},
                headers=key,
            )
        elif action == "reissue" and tickets:
            await self.call("reissue", "POST", f"/orders/{code}/reissue", json={"ticket_ids": tickets[:1]}, headers=key)
        elif action == "personalise":
            await self.call("personalise", "POST", f"/orders/{code}/personalisation", headers=key)
        else:
            await self.call("resend", "POST", f"/orders/{code}/resend", headers=key)

    async def traffic_loop(self, orders: list[dict[str, Any]], concurrency: int = 4) -> None:
        """Lanes of actions on random orders (an order may get several, some at once) until told to stop."""

        async def lane() -> None:
            while not self.stop_traffic.is_set():
                order = self.rng.choice(orders)
                if self.rng.random() < 0.3:  # two actions on one order, racing
                    await asyncio.gather(self.one_action(order), self.one_action(order))
                else:
                    await self.one_action(order)
                await asyncio.sleep(self.rng.uniform(0.05, 0.4))

        await asyncio.gather(*(lane() for _ in range(concurrency)))

    async def bulk_traffic(self, events: list[str]) -> None:
        await asyncio.sleep(3)
        await self.call("bulk-delivery", "POST", f"/events/{events[0]}/deliveries", json={"template": "tickets"})
        await asyncio.sleep(self.seconds / 3)
        await self.call(
            "event-cancellation", "POST", f"/events/{events[-1]}/cancel",
            json={"reason": "soak: called off", "refund": {"mode": "full"}, "notify": True},
        )

    # --- faults -------------------------------------------------------------------------------

    async def kill_worker(self) -> None:
        name = self.rng.choice(["worker-1", "worker-2"])
        await asyncio.to_thread(self.stack.kill, name, signal.SIGKILL)
        self.faults["worker SIGKILL"] += 1
        log(f"fault: {name} SIGKILLed")
        await asyncio.sleep(self.rng.uniform(1, 4))
        await asyncio.to_thread(self.stack.start, name)

    async def restart_temporal(self) -> None:
        await asyncio.to_thread(self.stack.kill, "temporal", signal.SIGTERM)
        self.faults["Temporal restart"] += 1
        log("fault: Temporal server stopped")
        await asyncio.sleep(2)
        await asyncio.to_thread(self.stack.start, "temporal")
        log("fault: Temporal server back on its db file")

    def _smtp(self, sig: int) -> None:
        self.stack.children["smtp"].process.send_signal(sig)

    async def relay_down(self, seconds: float = 30.0) -> None:
        self._smtp(signal.SIGUSR1)
        self.faults["relay down 30 s"] += 1
        log(f"fault: SMTP relay down for {seconds:.0f} s")
        await asyncio.sleep(seconds)
        self._smtp(signal.SIGUSR1)

    async def relay_defers(self, seconds: float = 20.0) -> None:
        self._smtp(signal.SIGUSR2)
        self.faults["relay 4xx for some recipients"] += 1
        log(f"fault: relay answers 451 to {DEFER_MATCHING!r} for {seconds:.0f} s")
        await asyncio.sleep(seconds)
        self._smtp(signal.SIGUSR2)

    async def processor(self, mode: str, seconds: float = 8.0) -> None:
        delay = 6.0 if mode == "slow" else None  # past TICKETOPS_REFUNDS__PAYMENT_TIMEOUT_SECONDS
        await self.stripe.inject_faults(0.5, mode=mode, path="/v1/refunds", delay_seconds=delay)  # type: ignore[arg-type]
        self.faults[f"processor {mode}"] += 1
        log(f"fault: processor {mode} on half the refund calls for {seconds:.0f} s")
        await asyncio.sleep(seconds)
        await self.stripe.inject_faults(0)

    async def lock_database(self, seconds: float = 3.0) -> None:
        url = self.stack.env["TICKETOPS_DATABASE_URL"]
        if not url.startswith("sqlite"):
            return
        path = url.split("///", 1)[1]

        def hold() -> None:
            conn = sqlite3.connect(path, timeout=30)
            try:
                conn.execute("BEGIN EXCLUSIVE")
                time.sleep(seconds)
                conn.rollback()
            finally:
                conn.close()

        self.faults["database locked"] += 1
        log(f"fault: SQLite database locked for {seconds:.0f} s")
        await asyncio.to_thread(hold)

    async def fault_loop(self) -> None:
        schedule: list[Callable[[], Awaitable[None]]] = [
            self.kill_worker,
            lambda: self.processor("before"),
            self.relay_defers,
            lambda: self.processor("after"),
            self.lock_database,
            self.kill_worker,
            self.restart_temporal,
            lambda: self.processor("rate_limited"),
            self.relay_down,
            lambda: self.processor("slow"),
            self.kill_worker,
            self.lock_database,
        ]
        gap = max(1.0, self.seconds / len(schedule) / 3)
        for fault in schedule:  # every fault runs, however short the soak: traffic waits for the last
            await fault()
            await asyncio.sleep(gap)

    # --- the run ------------------------------------------------------------------------------

    async def run(self, api_key: str) -> int:
        base = f"http://127.0.0.1:{self.stack.ports.api}"
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as h:
            self.http = h
            orders: list[dict[str, Any]] = []
            for offset in range(0, 2000, 200):
                page = (await h.get("/orders", params={"status": "paid", "limit": 200, "offset": offset})).json()
                orders += page
                if len(page) < 200:
                    break
            events = sorted({o["event_id"] for o in orders})
            log(f"traffic on {len(orders)} paid orders of {len(events)} events for {self.seconds:.0f} s")
            started = datetime.now(UTC)
            traffic = asyncio.gather(self.traffic_loop(orders), self.bulk_traffic(events))
            await asyncio.gather(self.fault_loop(), asyncio.sleep(self.seconds))
            self.stop_traffic.set()
            await traffic
        await self.stripe.reset()
        if self.stack.children["smtp"].process.poll() is None and not port_open(self.stack.ports.smtp):
            self._smtp(signal.SIGUSR1)  # the relay is back for the settling
        log("faults off; settling")
        return await self.verdict(started)

    def audit(self, since: datetime) -> dict[str, Any]:
        until = datetime.now(UTC) + timedelta(minutes=1)
        command = [
            str(Path(sys.executable).parent / "ticketops"), "audit",
            "--mail-dir", str(self.stack.var / "mail"),
            "--since", (since - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "--until", until.strftime("%Y-%m-%dT%H:%M:%S"),
            "--email-window-minutes", "0",
        ]
        done = subprocess.run(command, env=self.stack.env, capture_output=True, timeout=300, check=False)
        try:
            report: dict[str, Any] = json.loads(done.stdout)
        except ValueError:
            log(f"audit failed to run: {done.stderr.decode()[-2000:]}")
            raise
        return report

    async def settled(self) -> dict[str, int]:
        """What still moves: refunds on their way, bulk operations running, emails claimed and open."""
        import sqlalchemy as sa

        from ticketing.store.deliveries import OPEN
        from ticketing.store.engine import Store
        from ticketing.store.tables import bulk_operations, deliveries, refunds

        moving = ["requested", "refunding", "confirming-refund"]
        store = Store(self.stack.env["TICKETOPS_DATABASE_URL"])
        try:
            async with store.read() as conn:
                counts = {
                    "refunds moving": await conn.scalar(
                        sa.select(sa.func.count()).select_from(refunds).where(refunds.c.status.in_(moving))
                    ),
                    "bulk running": await conn.scalar(
                        sa.select(sa.func.count())
                        .select_from(bulk_operations)
                        .where(bulk_operations.c.status.in_(["running", "scheduled", "paused"]))
                    ),
                    "emails open": await conn.scalar(
                        sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.status.in_(list(OPEN)))
                    ),
                }
        finally:
            await store.dispose()
        return {k: int(v or 0) for k, v in counts.items() if v}

    async def verdict(self, since: datetime, settle: float = 240.0) -> int:
        deadline = time.monotonic() + settle
        while moving := await self.settled():
            if time.monotonic() > deadline:
                log(f"not settled after {settle:.0f} s: {moving}")
                break
            log(f"settling: {moving}")
            await asyncio.sleep(5)
        while True:
            report = await asyncio.to_thread(self.audit, since)
            if not report["findings"] or time.monotonic() > deadline:
                break
            log(f"{len(report['findings'])} finding(s) while settling; checking again")
            await asyncio.sleep(10)
        for finding in report["findings"]:
            log(f"FINDING {json.dumps(finding)}")
        figures = report["figures"]
        sent = sum(v for k, v in self.traffic.items() if k.endswith(":accepted"))
        line = (
            f"traffic {sum(self.traffic.values())} requests ({sent} accepted, {self.api_errors} 5xx), "
            f"faults {sum(self.faults.values())} ({', '.join(f'{n}x {k}' for k, n in sorted(self.faults.items()))}), "
            + ", ".join(f"{v} {k}" for k, v in figures.items())
        )
        log(f"traffic by kind: {dict(sorted(self.traffic.items()))}")
        print(line, flush=True)
        return 1 if report["findings"] or moving or self.traffic["5xx-not-problem"] else 0


async def _api_key(stack: Stack) -> str:
    from ticketing.roles import Role
    from ticketing.store.api_keys import create_api_key
    from ticketing.store.engine import Store

    store = Store(stack.env["TICKETOPS_DATABASE_URL"])
    try:
        key, _ = await create_api_key(store, "soak", Role.ADMIN)
    finally:
        await store.dispose()
    return key


def run_soak(*, minutes: float, orders: int, seed: int, var: Path | None = None, keep: bool = False) -> int:
    directory = var or Path(tempfile.mkdtemp(prefix="ticketops-soak-"))
    stack = Stack(
        var=directory,
        ports=Ports.free(),
        extra_env=FAST,
        stripe_args=["--pending-refund-settle-seconds", "2", "--refund-fail-after-seconds", "3"],
        smtp_args=["--defer-matching", DEFER_MATCHING],
    )
    log(f"stack in {directory} on ports {stack.ports}")
    code = 1
    try:
        for name in ("temporal", "stripe", "smtp"):
            stack.start(name)
        log(f"seeded: {stack.prepare(demo_orders=orders)}")
        key = asyncio.run(_api_key(stack))
        for name in ("worker-1", "worker-2", "api"):
            stack.start(name)
        code = asyncio.run(Soak(stack, seconds=minutes * 60, seed=seed).run(key))
    finally:
        stack.stop()
        if code == 0 and not keep and var is None:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            log(f"logs and data kept in {directory}")
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description="Bounded fault soak against a stack of its own; the auditor decides.")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long traffic and faults run")
    parser.add_argument("--orders", type=int, default=200, help="demo orders to seed")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--var", type=Path, help="keep the stack's data and logs here")
    args = parser.parse_args()
    code = run_soak(minutes=args.minutes, orders=args.orders, seed=args.seed, var=args.var)
    sys.stdout.flush()
    os._exit(code)  # temporalio core may crash at interpreter exit


if __name__ == "__main__":
    main()
