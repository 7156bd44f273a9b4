"""Stripe adapter over the SDK's async client.

Retries are Temporal's: the SDK makes one attempt, and the activity retries
429s and 5xx with backoff and the same idempotency key. A 4xx is Stripe saying
no, which becomes a `ProcessorRejected` with Stripe's error code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import stripe

from payment_adapters.base import (
    ProcessorPayment,
    ProcessorRefund,
    ProcessorRejected,
    ProcessorUnavailable,
    WebhookEvent,
    WebhookRejected,
)
from payment_adapters.stripe_client import build_stripe_client
from ticketing.models import Processor
from ticketing.money import Money
from ticketing.processors import CAPABILITIES

REFUND_EVENT_TYPES = {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
PAYMENT_EVENT_TYPES = {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"}


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def plain(obj: Any) -> dict[str, Any]:
    """SDK v16 objects are not dicts; webhooks arrive as objects too."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj)


def _refund(raw: Any) -> ProcessorRefund:
    obj = plain(raw)
    payment = obj.get("payment_intent")
    if isinstance(payment, dict):
        payment = payment.get("id")
    return ProcessorRefund(
        id=obj["id"],
        status=obj["status"],
        amount=Money(amount=obj["amount"], currency=obj["currency"].upper()),
        payment_reference=payment,
        failure_reason=obj.get("failure_reason"),
        pending_reason=obj.get("pending_reason"),
        metadata=dict(obj.get("metadata") or {}),
        created=_ts(obj.get("created")),
    )


def _payment(raw: Any) -> ProcessorPayment:
    obj = plain(raw)
    return ProcessorPayment(
        id=obj["id"],
        status=obj["status"],
        amount=Money(amount=obj["amount"], currency=obj["currency"].upper()),
        amount_refunded=0,
        created=_ts(obj.get("created")),
        metadata=dict(obj.get("metadata") or {}),
    )


def webhook_event(body: dict[str, Any]) -> WebhookEvent:
    """A Stripe event (from a verified webhook, or fetched from the API), normalised."""
    obj = body["data"]["object"]
    refund = None
    if body["type"] in REFUND_EVENT_TYPES and obj.get("object") == "refund":
        refund = _refund(obj)
    payment = None
    if body["type"] in PAYMENT_EVENT_TYPES and obj.get("object") == "payment_intent":
        payment = _payment(obj)
    created = _ts(body.get("created")) or datetime.now(UTC)
    return WebhookEvent(id=body["id"], type=body["type"], created=created, refund=refund, payment=payment)


def translate_error(err: stripe.StripeError) -> Exception:
    code = getattr(err, "code", None)
    status = err.http_status
    message = err.user_message or str(err)
    if isinstance(err, stripe.RateLimitError | stripe.APIConnectionError) or (status or 0) >= 500:
        return ProcessorUnavailable(message, code=code or "unavailable", status=status)
    if isinstance(err, stripe.IdempotencyError):
        # Same key, other parameters: a bug on our side, never retried blindly.
        return ProcessorRejected(message, code="idempotency_error", status=status)
    if status == 409:
        return ProcessorUnavailable(message, code=code or "conflict", status=status)
    return ProcessorRejected(message, code=code or type(err).__name__, status=status)


class StripeAdapter:
    processor = Processor.STRIPE
    capabilities = CAPABILITIES[Processor.STRIPE]

    def __init__(self, api_key: str, webhook_secret: str, *, base_url: str | None = None) -> None:
        self.client = build_stripe_client(api_key, base_url=base_url)
        self.webhook_secret = webhook_secret

    async def create_refund(
        self, *, payment_reference: str, amount: Money, idempotency_key: str, metadata: dict[str, str]
    ) -> ProcessorRefund:
        try:
            refund = await self.client.v1.refunds.create_async(
                params={
                    "payment_intent": payment_reference,
                    "amount": amount.amount,
                    "metadata": {**metadata, "idempotency_key": idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as err:
            raise translate_error(err) from err
        result = _refund(refund)
        if result.amount != amount:
            raise ProcessorRejected(
                f"Stripe refunded {result.amount.display()}, not {amount.display()}", code="amount_mismatch"
            )
        return result

    async def find_refunds(
        self, *, payment_reference: str, refund_id: str, idempotency_key: str
    ) -> list[ProcessorRefund]:
        """Stripe cannot search refunds by metadata: page through the payment's refunds and match."""
        params: dict[str, Any] = {"payment_intent": payment_reference, "limit": 100}
        found: list[ProcessorRefund] = []
        while True:
            try:
                page = await self.client.v1.refunds.list_async(params=cast(Any, params))
            except stripe.StripeError as err:
                raise translate_error(err) from err
            for item in page.data:
                refund = _refund(item)
                meta = refund.metadata
                if (refund_id and meta.get("refund_id") == refund_id) or meta.get("idempotency_key") == idempotency_key:
                    found.append(refund)
            if not page.has_more or not page.data:
                return found
            params["starting_after"] = page.data[-1].id

    async def get_refund(self, refund_id: str) -> ProcessorRefund:
        try:
            return _refund(await self.client.v1.refunds.retrieve_async(refund_id))
        except stripe.StripeError as err:
            raise translate_error(err) from err

    async def get_payment(self, payment_id: str) -> ProcessorPayment:
        try:
            return _payment(await self.client.v1.payment_intents.retrieve_async(payment_id))
        except stripe.StripeError as err:
            raise translate_error(err) from err

    async def void_payment(self, payment_reference: str) -> str:
        """`payment_intents.cancel`; an intent canceled by an earlier attempt counts as done."""
        try:
            intent = await self.client.v1.payment_intents.cancel_async(
                payment_reference, params={"cancellation_reason": "abandoned"}
            )
        except stripe.StripeError as err:
            if getattr(err, "code", None) == "payment_intent_unexpected_state":
                try:
                    current = await self.client.v1.payment_intents.retrieve_async(payment_reference)
                except stripe.StripeError as again:
                    raise translate_error(again) from again
                if current.status == "canceled":
                    return "canceled"
            raise translate_error(err) from err
        return str(intent.status)

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        if not signature:
            raise WebhookRejected("the Stripe-Signature header is missing", code="signature_missing")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as err:
            raise WebhookRejected(f"the webhook does not verify: {err}", code="signature_invalid") from err
        return webhook_event(plain(event))

    async def list_refunds(self, since: datetime) -> AsyncIterator[ProcessorRefund]:
        params: dict[str, Any] = {"created": {"gte": int(since.timestamp())}, "limit": 100}
        while True:
            try:
                page = await self.client.v1.refunds.list_async(params=cast(Any, params))
            except stripe.StripeError as err:
                raise translate_error(err) from err
            for item in page.data:
                yield _refund(item)
            if not page.has_more or not page.data:
                return
            params["starting_after"] = page.data[-1].id

    async def list_payments(self, since: datetime) -> AsyncIterator[ProcessorPayment]:
        params: dict[str, Any] = {"created": {"gte": int(since.timestamp())}, "limit": 100}
        while True:
            try:
                page = await self.client.v1.payment_intents.list_async(params=cast(Any, params))
            except stripe.StripeError as err:
                raise translate_error(err) from err
            for pi in page.data:
                yield ProcessorPayment(
                    id=pi.id,
                    status=pi.status,
                    amount=Money(amount=pi.amount, currency=pi.currency.upper()),
                    created=_ts(pi.created),
                )
            if not page.has_more or not page.data:
                return
            params["starting_after"] = page.data[-1].id
