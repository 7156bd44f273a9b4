"""Demo data for `ticketops demo seed`: three events and a few hundred believable orders.

Why: on a fresh machine (`make dev`) agents, finance and the Web UI need orders
in every state a backoffice action works on: paid by each payment method,
reserved, expired, cancelled, scanned at the gate, personalised. The plan is
drawn from `random.Random(rng_seed)`, so a seed always gives the same orders;
only barcodes and ticket ids come from `secrets`, because they must never be
guessable. Seeding touches only a store without events, so it is idempotent.

Card and wallet payments come from the caller's `create_payment` (in `make dev`,
PaymentIntents on the local Stripe-compatible server), so refunds of demo orders
reach a processor that knows them. They are created before the one transaction
that writes everything: no network call holds the database.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.issuing import build_order
from ticketing.models import (
    Contact,
    Event,
    EventPolicy,
    Fee,
    FeeKind,
    Model,
    Order,
    OrderEvent,
    PaymentMethod,
    Personalisation,
    Scan,
    Ticket,
    TicketType,
    TimeSlot,
)
from ticketing.money import Money
from ticketing.states import OrderStatus, PaymentStatus, ScanState, TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import adjust_inventory, insert_event, insert_order, save_order
from ticketing.store.tables import events as events_table

# (amount, description) -> (the processor's payment id, the card's last four digits if it knows them)
CreatePayment = Callable[[Money, str], Awaitable[tuple[str, str | None]]]
ACTOR = "demo-seed"

FIRST_NAMES = (
    "Ada",
    "Amara",
    "Anouk",
    "Bram",
    "Carlos",
    "Chen",
    "Daan",
    "Elif",
    "Emma",
    "Farah",
    "Finn",
    "Grace",
    "Hannah",
    "Hugo",
    "Ines",
    "Jonas",
    "Julia",
    "Kofi",
    "Lars",
    "Lea",
    "Liam",
    "Lucia",
    "Maya",
    "Mehmet",
    "Mila",
    "Noah",
    "Nora",
    "Olga",
    "Omar",
    "Priya",
    "Ravi",
    "Rosa",
    "Sam",
    "Sofia",
    "Tariq",
    "Thijs",
    "Yara",
    "Yusuf",
    "Zoe",
)
LAST_NAMES = (
    "Andersen",
    "Bakker",
    "Costa",
    "de Vries",
    "Dubois",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jansen",
    "Kowalski",
    "Laine",
    "Martin",
    "Meyer",
    "Mensah",
    "Nakamura",
    "Novak",
    "Okafor",
    "Patel",
    "Rossi",
    "Schmidt",
    "Silva",
    "Smit",
    "Svensson",
    "Visser",
    "Walsh",
    "Yilmaz",
    "Zhang",
)
DOMAINS = ("example.com", "example.org")
GATES = ("Main gate", "North gate", "East gate")
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # as issuing.new_order_code, but seeded

# Paid orders' payment methods; free orders are the community event's.
METHOD_WEIGHTS = {
    PaymentMethod.CARD: 70,
    PaymentMethod.WALLET: 14,
    PaymentMethod.INVOICE: 9,
    PaymentMethod.VOUCHER: 7,
}
# The first orders cover every method and status, so even a small seed shows each.
FIRST_ORDERS = (
    ("festival", PaymentMethod.CARD, OrderStatus.PAID),
    ("concert", PaymentMethod.WALLET, OrderStatus.PAID),
    ("festival", PaymentMethod.INVOICE, OrderStatus.PAID),
    ("concert", PaymentMethod.VOUCHER, OrderStatus.PAID),
    ("community", PaymentMethod.FREE, OrderStatus.PAID),
    ("concert", PaymentMethod.INVOICE, OrderStatus.RESERVED),
    ("festival", PaymentMethod.INVOICE, OrderStatus.EXPIRED),
    ("concert", PaymentMethod.CARD, OrderStatus.CANCELLED),
)


class DemoReport(Model):
    seeded: bool
    message: str
    events: int = 0
    orders: int = 0
    tickets: int = 0
    by_method: dict[str, int] = {}
    by_status: dict[str, int] = {}
    scanned: int = 0
    personalised: int = 0


@dataclass
class _Show:
    event: Event
    types: list[TicketType]
    slots: list[TimeSlot]


def _eur(cents: int) -> Money:
    return Money(amount=cents, currency="EUR")


def _shows(now: datetime, scale: int) -> dict[str, _Show]:
    """A concert with two shows, a festival under way (gates open), a free picnic."""
    day = now.replace(minute=0, second=0, microsecond=0)
    concert_at = (day + timedelta(days=24)).replace(hour=19)
    festival_at = (day - timedelta(days=1)).replace(hour=11)
    picnic_at = (day + timedelta(days=10)).replace(hour=12)
    concert = Event(
        id="evt_demo_concert",
        name="Harbour Lights Concert",
        venue="Pier 4 Arena",
        starts_at=concert_at,
        currency="EUR",
        policy=EventPolicy(cancellation_cutoff_hours=48, refund_approval_threshold=50_000),
    )
    festival = Event(
        id="evt_demo_festival",
        name="Dunes Open Air Festival",
        venue="Dunes Park",
        starts_at=festival_at,
        currency="EUR",
        # Its own organiser in the buyers' emails (sender name, colour, reply-to); the others use the defaults.
        policy=EventPolicy(
            refund_booking_fees=False,
            allow_item_cancellation=True,
            organiser_name="Dunes Open Air",
            brand_colour="#b45309",
            reply_to="crew@dunes-open-air.example",
        ),
    )
    picnic = Event(
        id="evt_demo_picnic",
        name="Neighbourhood Picnic",
        venue="Westerpark",
        starts_at=picnic_at,
        currency="EUR",
        policy=EventPolicy(allow_item_cancellation=True),
    )

    def kind(event: Event, key: str, name: str, cents: int, quota: int, **kw: bool) -> TicketType:
        return TicketType(
            id=f"{event.id}_{key}",
            event_id=event.id,
            name=name,
            price=_eur(cents),
            quota=quota * scale,
            **kw,
        )

    return {
        "concert": _Show(
            concert,
            [kind(concert, "ga", "General admission", 3900, 500), kind(concert, "balcony", "Balcony seat", 5900, 150)],
            [
                TimeSlot(
                    id="evt_demo_concert_early",
                    event_id=concert.id,
                    label="Evening show",
                    starts_at=concert_at,
                    capacity=400 * scale,
                ),
                TimeSlot(
                    id="evt_demo_concert_late",
                    event_id=concert.id,
                    label="Late show",
                    starts_at=concert_at + timedelta(hours=3, minutes=30),
                    capacity=300 * scale,
                ),
            ],
        ),
        "festival": _Show(
            festival,
            [
                kind(festival, "weekend", "Weekend pass", 12900, 600),
                kind(festival, "day", "Day ticket", 5900, 400),
                kind(festival, "vip", "VIP weekend", 29900, 60, requires_personalisation=True),
            ],
            [],
        ),
        "community": _Show(picnic, [kind(picnic, "entry", "Free entry", 0, 300)], []),
    }


class _Planner:
    """Draws one order after another from the seeded generator, within the quotas."""

    def __init__(self, rng: random.Random, shows: dict[str, _Show], now: datetime) -> None:
        self.rng, self.shows, self.now = rng, shows, now
        self.left = Counter({t.id: t.quota for s in shows.values() for t in s.types})
        self.left.update({sl.id: sl.capacity for s in shows.values() for sl in s.slots})
        self.codes: set[str] = set()

    def code(self) -> str:
        while True:
            code = "".join(self.rng.choice(_CODE_ALPHABET) for _ in range(8))
            if code not in self.codes:
                self.codes.add(code)
                return code

    def person(self) -> tuple[str, str, str]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        handle = f"{first}.{last}".lower().replace(" ", "")
        if self.rng.random() < 0.3:
            handle += str(self.rng.randint(1, 99))
        mobile = "+316" + "".join(str(self.rng.randint(0, 9)) for _ in range(8))
        return f"{first} {last}", f"{handle}@{self.rng.choice(DOMAINS)}", mobile

    def kind_of(self, n: int) -> tuple[str, PaymentMethod, OrderStatus]:
        if n < len(FIRST_ORDERS):
            return FIRST_ORDERS[n]
        # A handful of each unusual status at a fixed stride, so no seed is left without them.
        if n % 37 == 5 or n % 41 == 6:  # reservations wait for a bank transfer; some lapse
            status = OrderStatus.RESERVED if n % 37 == 5 else OrderStatus.EXPIRED
            return self.rng.choice(("concert", "festival")), PaymentMethod.INVOICE, status
        status = OrderStatus.CANCELLED if n % 29 == 7 else OrderStatus.PAID
        if self.rng.random() < 0.15:
            return "community", PaymentMethod.FREE, status
        method = self.rng.choices(list(METHOD_WEIGHTS), weights=list(METHOD_WEIGHTS.values()))[0]
        return self.rng.choices(("concert", "festival"), weights=(55, 45))[0], method, status

    def items(self, show: _Show, holds_seats: bool, vip: bool) -> list[tuple[TicketType, str | None]]:
        """Tickets of one type (with `vip`, one that needs personal data); only paid and
        reserved orders take seats."""
        types = show.types
        weights = {3: (55, 30, 15), 2: (80, 20), 1: (100,)}[len(types)]
        chosen = self.rng.choices(types, weights=weights)[0]
        if vip:
            chosen = next(t for t in types if t.requires_personalisation)
        sizes = (1, 2, 2) if chosen.requires_personalisation else (1, 2, 2, 2, 3, 4)
        quantity = self.rng.choice(sizes)
        slot = self.rng.choices(show.slots, weights=(60, 40))[0].id if show.slots else None
        quantity = min(quantity, self.left[chosen.id], self.left[slot] if slot else quantity)
        if holds_seats:
            self.left[chosen.id] -= quantity
            if slot:
                self.left[slot] -= quantity
        return [(chosen, slot)] * quantity

    def order(self, n: int, references: dict[int, str]) -> Order | None:
        key, method, status = self.kind_of(n)
        show = self.shows[key]
        holds_seats = status in (OrderStatus.PAID, OrderStatus.RESERVED)
        items = self.items(show, holds_seats, vip=n == 0)  # the first order shows personalisation
        if not items:
            return None  # sold out: the seed is larger than the quotas
        name, email, mobile = self.person()
        fees = []
        if method not in (PaymentMethod.FREE, PaymentMethod.VOUCHER):
            fees = [
                Fee(
                    kind=FeeKind.SERVICE,
                    amount=_eur(150 * len(items)),
                    refundable=show.event.policy.refund_service_fees,
                ),
                Fee(kind=FeeKind.BOOKING, amount=_eur(250), refundable=show.event.policy.refund_booking_fees),
            ]
        ago = {OrderStatus.RESERVED: (0.05, 0.5), OrderStatus.EXPIRED: (3, 20)}.get(status, (3, 60))
        created = self.now - timedelta(minutes=int(self.rng.uniform(*ago) * 24 * 60))
        if method is PaymentMethod.INVOICE:
            references[n] = f"INV-{created.year}-{n + 1:05d}"
        elif method is PaymentMethod.VOUCHER:
            references[n] = "VCH-" + "".join(self.rng.choice(_CODE_ALPHABET) for _ in range(6))
        order = build_order(
            event=show.event,
            items=items,
            contact=Contact(name=name, email=email, mobile=mobile, verified=self.rng.random() < 0.6),
            method=method,
            fees=fees,
            created_at=created,
            status=status,
            code=self.code(),
        )
        if not holds_seats:  # a lapsed reservation or a cancelled order gives its seats back
            void = order.payment.model_copy(update={"status": PaymentStatus.VOIDED})
            cancelled = [t.model_copy(update={"state": TicketState.CANCELLED}) for t in order.tickets]
            order = order.model_copy(
                update={
                    "tickets": cancelled,
                    "payment": void if status is OrderStatus.EXPIRED else order.payment,
                }
            )
        return self.personalise(order)

    def personalise(self, order: Order) -> Order:
        """Most tickets that need a holder have one; the buyer holds the first."""
        tickets = [self._holder(order, i, t) for i, t in enumerate(order.tickets)]
        return order.model_copy(update={"tickets": tickets})

    def _holder(self, order: Order, position: int, ticket: Ticket) -> Ticket:
        if not (ticket.requires_personalisation and ticket.is_valid and self.rng.random() < 0.7):
            return ticket
        c = order.contact
        name, email, phone = (c.name, c.email, c.mobile) if position == 0 else self.person()
        holder = Personalisation(name=name, email=email, phone=phone)
        return ticket.model_copy(update={"personalisation": holder})

    def scanned(self, order: Order, opened: datetime) -> Order:
        """Tickets of an event under way that went through a gate (personalised ones only)."""
        if order.status is not OrderStatus.PAID:
            return order
        return order.model_copy(update={"tickets": [self._scan(t, opened) for t in order.tickets]})

    def _scan(self, ticket: Ticket, opened: datetime) -> Ticket:
        ready = not ticket.requires_personalisation or ticket.personalisation
        if not (ready and ticket.is_valid and self.rng.random() < 0.4):
            return ticket
        open_for = int((self.now - opened).total_seconds() // 60)
        at = opened + timedelta(minutes=self.rng.randint(0, open_for))
        scan = Scan(at=at, result="accepted", access_point=self.rng.choice(GATES), scan_state=ScanState.SCANNED_IN)
        return ticket.model_copy(update={"scan_state": ScanState.SCANNED_IN, "scans": [scan]})


def _history(order: Order) -> list[OrderEvent]:
    at = order.created_at
    history = [OrderEvent(type="order-created", actor=ACTOR, at=at, data={"source": "demo"})]
    if order.payment.status is PaymentStatus.SUCCEEDED:
        history.append(OrderEvent(type="order-paid", actor=ACTOR, at=at + timedelta(minutes=1)))
    if order.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        kind = f"order-{order.status.value}"
        history.append(OrderEvent(type=kind, actor=ACTOR, at=at + timedelta(days=1)))
    history += [
        OrderEvent(type="ticket-personalised", actor=ACTOR, at=at + timedelta(hours=2), data={"ticket_id": t.id})
        for t in order.tickets
        if t.personalisation
    ]
    return history


async def _has_events(conn: AsyncConnection) -> bool:
    return (await conn.execute(sa.select(events_table.c.id).limit(1))).first() is not None


async def seed_demo(
    store: Store,
    *,
    orders: int = 200,
    create_payment: CreatePayment | None = None,
    rng_seed: int = 7,
    now: datetime | None = None,
) -> DemoReport:
    """Seed an empty store with demo events and about `orders` orders; leave any other alone."""
    async with store.transaction() as conn:
        if await _has_events(conn):
            return DemoReport(seeded=False, message="the store has events already; nothing seeded")
    now = now or datetime.now(UTC)
    shows = _shows(now, scale=max(1, -(-orders // 200)))
    planner = _Planner(random.Random(rng_seed), shows, now)
    references: dict[int, str] = {}
    planned = [(n, o) for n in range(orders) if (o := planner.order(n, references))]
    festival = shows["festival"].event
    planned = [(n, planner.scanned(o, festival.starts_at) if o.event_id == festival.id else o) for n, o in planned]
    paid = await _processor_payments(planned, create_payment)
    references.update({n: ref for n, (ref, _) in paid.items()})
    final = []
    for n, order in planned:
        last4 = paid[n][1] if n in paid and order.payment.method is PaymentMethod.CARD else None
        payment = order.payment.model_copy(update={"reference": references.get(n), "card_last4": last4})
        final.append(order.model_copy(update={"payment": payment}))
    async with store.transaction() as conn:
        if await _has_events(conn):  # someone else seeded meanwhile
            return DemoReport(seeded=False, message="the store has events already; nothing seeded")
        await _write(conn, shows, final)
    tickets = [t for o in final for t in o.tickets]
    return DemoReport(
        seeded=True,
        message=f"seeded {len(shows)} events and {len(final)} orders",
        events=len(shows),
        orders=len(final),
        tickets=len(tickets),
        by_method=dict(Counter(o.payment.method.value for o in final)),
        by_status=dict(Counter(o.status.value for o in final)),
        scanned=sum(t.scan_state is ScanState.SCANNED_IN for t in tickets),
        personalised=sum(t.personalisation is not None for t in tickets),
    )


async def _processor_payments(
    planned: list[tuple[int, Order]], create_payment: CreatePayment | None
) -> dict[int, tuple[str, str | None]]:
    """Processor references (and card digits) of settled card and wallet orders, eight requests at a time."""
    wanted = [
        (n, o)
        for n, o in planned
        if o.payment.method in (PaymentMethod.CARD, PaymentMethod.WALLET)
        and o.payment.status is PaymentStatus.SUCCEEDED
    ]
    if create_payment is None:
        return {n: (f"pi_demo_{n + 1}", "4242") for n, _ in wanted}
    gate = asyncio.Semaphore(8)

    async def one(order: Order) -> tuple[str, str | None]:
        async with gate:
            return await create_payment(order.payment.amount, f"ticketops demo order {order.code}")

    found = await asyncio.gather(*(one(o) for _, o in wanted))
    return {n: paid for (n, _), paid in zip(wanted, found, strict=True)}


async def _write(conn: AsyncConnection, shows: dict[str, _Show], orders: list[Order]) -> None:
    for show in shows.values():
        await insert_event(conn, show.event, show.types, show.slots)
    seats: Counter[tuple[str, str | None]] = Counter()
    for order in orders:
        unscanned = [t.model_copy(update={"scan_state": ScanState.UNSCANNED, "scans": []}) for t in order.tickets]
        created = order.model_copy(update={"tickets": unscanned})
        await insert_order(conn, created, _history(order))
        scans = [
            OrderEvent(
                type="ticket-scanned",
                actor="scanner",
                at=s.at,
                data={"ticket_id": t.id, "access_point": s.access_point},
            )
            for t in order.tickets
            for s in t.scans
        ]
        if scans:  # through save_order, the one writer of scans, with their history
            await save_order(conn, created, order, scans)
        if order.status in (OrderStatus.PAID, OrderStatus.RESERVED):
            seats.update((t.ticket_type_id, t.time_slot_id) for t in order.tickets if t.is_valid)
    for (type_id, slot_id), taken in seats.items():
        await adjust_inventory(conn, type_id, slot_id, taken)
