"""`StripeAdmin`: the stand-in's switches from another process, over `/_admin/...`.

The same switches as the `StripeServer` hooks, for a soak, a chaos test or a
running `make dev`:

    admin = StripeAdmin("http://127.0.0.1:12111", "sk_test_ticketops")
    await admin.inject_faults(1.0, mode="rate_limited", method="GET", count=3)
    await admin.fail_refund_silently("re_...")
    await admin.reset()
"""

from __future__ import annotations

from typing import Any

import httpx

from .limits import FaultMode
from .state import WebhookFate


class StripeAdminError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"stripe admin answered {status}: {body}")
        self.status = status
        self.body = body


class StripeAdmin:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/") + "/_admin"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.request(method, f"{self._base}/{path}", json=body, headers=self._headers)
        payload = response.json()
        if response.status_code != 200:
            raise StripeAdminError(response.status_code, payload)
        return dict(payload)

    async def state(self) -> dict[str, Any]:
        """The switches as they are now (faults, limits, latency, drops, clock)."""
        return await self._call("GET", "state")

    async def reset(self) -> dict[str, Any]:
        return await self._call("POST", "reset", {})

    async def inject_faults(
        self,
        rate: float,
        *,
        mode: FaultMode | None = None,
        seed: int | None = None,
        count: int | None = None,
        method: str | None = None,
        path: str | None = None,
        delay_seconds: float | None = None,
    ) -> dict[str, Any]:
        body = {"rate": rate, "mode": mode, "seed": seed, "count": count, "method": method, "path": path}
        body["delay_seconds"] = delay_seconds
        return await self._call("POST", "faults", body)

    async def set_rate_limit(self, per_second: float | None) -> dict[str, Any]:
        return await self._call("POST", "rate_limit", {"per_second": per_second})

    async def set_latency(self, latency_ms: int) -> dict[str, Any]:
        return await self._call("POST", "latency", {"ms": latency_ms})

    async def set_webhook_url(self, url: str | None) -> dict[str, Any]:
        return await self._call("POST", "webhook_url", {"url": url})

    async def set_clock(self, *, offset_seconds: float = 0.0, frozen_at: float | None = None) -> dict[str, Any]:
        return await self._call("POST", "clock", {"offset_seconds": offset_seconds, "frozen_at": frozen_at})

    async def advance_clock(self, seconds: float) -> dict[str, Any]:
        return await self._call("POST", "clock", {"advance_seconds": seconds})

    async def force_refund_failure(
        self,
        refund_id: str,
        reason: str = "expired_or_canceled_card",
        *,
        after_seconds: float = 0.0,
        webhook: WebhookFate = "send",
    ) -> dict[str, Any]:
        body = {"reason": reason, "after_seconds": after_seconds, "webhook": webhook}
        return await self._call("POST", f"refunds/{refund_id}/fail", body)

    async def fail_refund_silently(
        self, refund_id: str, reason: str = "expired_or_canceled_card", *, after_seconds: float = 0.0
    ) -> dict[str, Any]:
        return await self.force_refund_failure(refund_id, reason, after_seconds=after_seconds, webhook="acknowledged")

    async def dashboard_refund(
        self, payment_intent: str, *, amount: int | None = None, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {"payment_intent": payment_intent, "amount": amount, "metadata": metadata or {}}
        return await self._call("POST", "dashboard_refunds", body)

    async def duplicate_refund(self, refund_id: str, *, amount: int | None = None) -> dict[str, Any]:
        return await self._call("POST", f"refunds/{refund_id}/duplicate", {"amount": amount})

    async def hold_refund_pending(self, refund_id: str, pending_reason: str = "insufficient_funds") -> dict[str, Any]:
        return await self._call("POST", f"refunds/{refund_id}/hold", {"pending_reason": pending_reason})

    async def release_refund(self, refund_id: str, *, after_seconds: float = 0.0) -> dict[str, Any]:
        return await self._call("POST", f"refunds/{refund_id}/release", {"after_seconds": after_seconds})

    async def drop_webhooks(
        self, count: int | None = 1, *, types: list[str] | None = None, object_id: str | None = None
    ) -> dict[str, Any]:
        return await self._call("POST", "webhooks/drop", {"count": count, "types": types, "object_id": object_id})

    async def stray_balance_transaction(
        self, refund_id: str, *, type: str = "refund_failure", amount: int | None = None
    ) -> dict[str, Any]:
        return await self._call("POST", f"refunds/{refund_id}/stray_balance", {"type": type, "amount": amount})

    async def forget_idempotency_keys(self) -> int:
        return int((await self._call("POST", "idempotency/forget", {}))["forgotten"])

    async def resend_event(self, event_id: str) -> dict[str, Any]:
        return await self._call("POST", f"events/{event_id}/resend", {})
