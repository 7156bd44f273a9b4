"""Import orders from a CSV or JSON file, all or nothing.

Format: one row per ticket line; JSON is a list of objects with the same keys
(values are text or whole numbers; null means empty). Columns:

=================  ========  ===============================================
order_code         optional  rows with the same code form one order; an empty
                             code makes the row an order of its own, with a
                             generated code
event_id           required  must exist in the store; the currency comes from it
ticket_type_id     required  a ticket type of that event
time_slot_id       optional  required when the event has time slots
quantity           required  positive whole number
contact_name       required
contact_email      required  must look like an email address
contact_mobile     required  digits, optionally with +, spaces, dashes, brackets
payment_method     required  card | wallet | invoice | voucher | free
payment_reference  optional  required for card and wallet (the processor's id)
card_last4         optional  the card's last four digits, for card payments;
                             the buyer's emails say "card ending 4242"
status             optional  paid | reserved (default paid)
service_fee        optional  per order, integer minor units (cents); default 0
booking_fee        optional  per order, integer minor units (cents); default 0
created_at         optional  ISO 8601 with a zone (2026-05-01T18:00:00+02:00);
                             default: the time of the import
=================  ========  ===============================================

Every field except ticket_type_id, time_slot_id and quantity is order-level:
all rows of one order must repeat the same value. Quotas (ticket type
`quota - sold`, time slot `capacity - sold`) are checked over the whole file.
Whether fees are refundable comes from the event's policy.

Errors name a row and a field: `row 7, field contact_email: not an email
address`. Row 1 is the first data row: the CSV header is not counted, so row 7
is line 8 of the spreadsheet; in JSON row 7 is the 7th object. Every error is
reported at once, and a file with any error imports nothing: the operator fixes
the file and runs it again, instead of working out which half went in.

This module is the pure half: reading a file's text, parsing it, and checking it
against a catalogue (events, ticket types, time slots) and the codes already
taken. `ticketing/store/importing.py` loads those from the store and writes the
orders, in the same transaction as the checks.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ticketing.errors import DomainError
from ticketing.issuing import build_order
from ticketing.models import Contact, Event, Fee, FeeKind, Model, Order, PaymentMethod, TicketType, TimeSlot
from ticketing.money import Money
from ticketing.states import OrderStatus

ORDER_FIELDS = ("order_code", "event_id", "contact_name", "contact_email", "contact_mobile", "payment_method",
                "payment_reference", "card_last4", "status", "service_fee", "booking_fee", "created_at")
LINE_FIELDS = ("ticket_type_id", "time_slot_id", "quantity")
COLUMNS = ORDER_FIELDS + LINE_FIELDS
REQUIRED = frozenset(
    {"event_id", "ticket_type_id", "quantity", "contact_name", "contact_email", "contact_mobile", "payment_method"})
IMPORTABLE_STATUSES = (OrderStatus.PAID, OrderStatus.RESERVED)
NEEDS_REFERENCE = (PaymentMethod.CARD, PaymentMethod.WALLET)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,24}$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_MAX_LEN = {"contact_name": 200, "contact_email": 320, "payment_reference": 100}


@dataclass(frozen=True)
class ImportIssue:
    """One problem, where a user finds it: data row (1-based, header not counted) and column."""

    message: str
    row: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = [f"row {self.row}" if self.row else "", f"field {self.field}" if self.field else ""]
        return f"{', '.join(p for p in parts if p) or 'file'}: {self.message}"


class ImportFailed(DomainError):
    """The file has problems; `issues` lists every one of them, and nothing was imported."""

    type = "import-invalid"

    def __init__(self, issues: list[ImportIssue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the file; nothing was imported")
        self.issues = issues


class ImportedLine(Model):
    row: int
    ticket_type_id: str
    time_slot_id: str | None
    quantity: int


class ImportedOrder(Model):
    """One order of the file, checked for form but not yet against the store."""

    row: int  # its first row
    code: str | None  # None: generated on import
    event_id: str
    contact: Contact
    payment_method: PaymentMethod
    payment_reference: str | None
    card_last4: str | None = None
    status: OrderStatus
    service_fee: int  # minor units
    booking_fee: int
    created_at: datetime | None
    lines: list[ImportedLine]


class ImportReport(Model):
    orders: int
    tickets: int
    codes: list[str]


# --- reading and parsing -------------------------------------------------------------------------


@dataclass
class _Row:
    number: int
    cells: dict[str, str]  # every column, as stripped text ("" when empty)
    values: dict[str, Any] = field(default_factory=dict)  # the cells that parsed


def _records(text: str, suffix: str, issues: list[ImportIssue]) -> tuple[list[tuple[int, Any]], list[str]]:
    """(row number, record) pairs and the column names, from CSV or JSON text."""
    records: list[tuple[int, Any]] = []
    columns: list[str] = []
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            issues.append(ImportIssue(f"not valid JSON: {err}"))
            return [], []
        if not isinstance(data, list):
            issues.append(ImportIssue("expected a JSON list of objects, one per row"))
            return [], []
        for number, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                issues.append(ImportIssue("expected an object of column names", number))
                continue
            records.append((number, item))
            columns += [k for k in item if k not in columns]
        return records, columns
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        columns = [c.strip().lower() for c in next(reader, [])]
        for number, values in enumerate(reader, start=1):
            if not any(v.strip() for v in values):
                continue  # a blank spreadsheet row still takes its number
            if len(values) > len(columns):
                issues.append(ImportIssue("more cells than the header has columns", number))
            records.append((number, dict(zip(columns, values, strict=False))))
    except csv.Error as err:
        issues.append(ImportIssue(f"not valid CSV: {err}"))
    issues += [ImportIssue("the column appears twice", field=c) for c, n in Counter(columns).items() if n > 1]
    return records, columns


def _read(text: str, suffix: str, issues: list[ImportIssue]) -> tuple[list[_Row], set[str]]:
    """The rows as text cells, and the required columns the CSV header lacks."""
    records, columns = _records(text, suffix, issues)
    if not records and not issues:
        issues.append(ImportIssue("the file has no data rows"))
    issues += [ImportIssue("unknown column", field=c) for c in columns if c not in COLUMNS]
    missing = set()
    if suffix == ".csv" and columns:  # in JSON a missing key is an empty value
        missing = {c for c in REQUIRED if c not in columns}
        issues += [ImportIssue("the column is missing", field=c) for c in COLUMNS if c in missing]
    rows = []
    for number, record in records:
        cells = {}
        for name in COLUMNS:
            value = record.get(name)
            if value is None:
                cells[name] = ""
            elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                cells[name] = str(value).strip()
            else:
                issues.append(ImportIssue("expected text or a whole number", number, name))
        rows.append(_Row(number, cells))
    return rows, missing


def _whole(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _parse_field(name: str, text: str) -> tuple[Any, str | None]:
    """(value, problem) for one non-empty cell."""
    if len(text) > _MAX_LEN.get(name, 64):
        return None, f"longer than {_MAX_LEN.get(name, 64)} characters"
    if name == "order_code":
        return (text.upper(), None) if _CODE.match(text) else (None, "use up to 32 letters, digits, - or _")
    if name == "quantity":
        n = _whole(text)
        return (n, None) if n else (None, "must be a positive whole number")
    if name in ("service_fee", "booking_fee"):
        n = _whole(text)
        return (n, None) if n is not None else (None, "must be whole minor units (cents), >= 0")
    if name == "contact_email":
        return (text.lower(), None) if _EMAIL.match(text) else (None, "not an email address")
    if name == "contact_mobile":
        return (text, None) if _PHONE.match(text) else (None, "not a phone number")
    if name == "payment_method":
        if text.lower() in set(PaymentMethod):
            return PaymentMethod(text.lower()), None
        return None, f"must be one of {', '.join(PaymentMethod)}"
    if name == "card_last4":
        return (text, None) if re.fullmatch(r"[0-9]{4}", text) else (None, "must be the card's last four digits")
    if name == "status":
        if text.lower() in IMPORTABLE_STATUSES:
            return OrderStatus(text.lower()), None
        return None, "must be paid or reserved"
    if name == "created_at":
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            return None, "not an ISO 8601 date and time"
        return (at, None) if at.tzinfo else (None, "needs a time zone, e.g. Z or +02:00")
    return text, None


def _parse_row(row: _Row, issues: list[ImportIssue], missing: set[str]) -> None:
    for name, text in row.cells.items():
        if not text:
            if name in REQUIRED and name not in missing:  # a missing column is reported once
                issues.append(ImportIssue("required", row.number, name))
            continue
        value, problem = _parse_field(name, text)
        if problem:
            issues.append(ImportIssue(problem, row.number, name))
        else:
            row.values[name] = value
    method = row.values.get("payment_method")
    if method in NEEDS_REFERENCE and not row.cells.get("payment_reference"):
        issues.append(ImportIssue(f"required for {method} payments", row.number, "payment_reference"))
    if row.values.get("card_last4") and method is not PaymentMethod.CARD:
        issues.append(ImportIssue("only a card payment has a card number", row.number, "card_last4"))
    for fee in ("service_fee", "booking_fee"):
        if method is PaymentMethod.FREE and row.values.get(fee):
            issues.append(ImportIssue("a free order carries no fees", row.number, fee))


def _group(rows: list[_Row], issues: list[ImportIssue]) -> list[list[_Row]]:
    """Rows by order code (an empty code is an order of its own); later rows must agree."""
    groups: dict[str | int, list[_Row]] = {}
    for row in rows:
        code = row.values.get("order_code")
        if code or not row.cells.get("order_code"):  # an invalid code is reported already
            groups.setdefault(code or row.number, []).append(row)
    for first, *others in groups.values():
        for row in others:
            for name in ORDER_FIELDS:
                if any(r.cells.get(name) and name not in r.values for r in (first, row)):
                    continue  # a value that does not parse is reported already
                if first.values.get(name, first.cells.get(name)) != row.values.get(name, row.cells.get(name)):
                    problem = f"differs from row {first.number}, the first row of order {first.values['order_code']}"
                    issues.append(ImportIssue(problem, row.number, name))
    return list(groups.values())


def _to_order(group: list[_Row]) -> ImportedOrder:
    v = group[0].values
    return ImportedOrder(
        row=group[0].number, code=v.get("order_code"), event_id=v["event_id"],
        contact=Contact(name=v["contact_name"], email=v["contact_email"], mobile=v["contact_mobile"]),
        payment_method=v["payment_method"], payment_reference=v.get("payment_reference"),
        card_last4=v.get("card_last4"), status=v.get("status", OrderStatus.PAID), service_fee=v.get("service_fee", 0),
        booking_fee=v.get("booking_fee", 0), created_at=v.get("created_at"),
        lines=[ImportedLine(row=r.number, ticket_type_id=r.values["ticket_type_id"],
                            time_slot_id=r.values.get("time_slot_id"), quantity=r.values["quantity"]) for r in group],
    )


def _sorted(issues: list[ImportIssue]) -> list[ImportIssue]:
    """By row, then in column order; the file's own problems first, unknown columns last."""
    position: dict[str | None, int] = {None: -1, **{name: i for i, name in enumerate(COLUMNS)}}
    return sorted(issues, key=lambda i: (i.row or 0, position.get(i.field, len(COLUMNS))))


@dataclass
class ParsedFile:
    """A file checked for form: its rows grouped into orders, and every problem found so far.

    The groups are kept even when there are problems, so that the checks against the
    catalogue still run and the operator sees every error of the file at once.
    """

    groups: list[list[_Row]]
    issues: list[ImportIssue]

    def event_ids(self) -> set[str]:
        """The events the file names, to load into a `Catalogue`."""
        return {g[0].values.get("event_id", "") for g in self.groups} - {""}

    def order_codes(self) -> set[str]:
        """The order codes the file gives, to look up among the taken ones."""
        return {g[0].values["order_code"] for g in self.groups if "order_code" in g[0].values}


def parse_text(text: str, suffix: str) -> ParsedFile:
    """Parse a file's text; `suffix` is `.csv` or `.json`."""
    issues: list[ImportIssue] = []
    rows, missing = _read(text, suffix, issues)
    for row in rows:
        _parse_row(row, issues, missing)
    return ParsedFile(_group(rows, issues), issues)


def parse_file(path: Path) -> ParsedFile:
    """Read a .csv or .json file and parse it; a file that cannot be read is one problem."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        return ParsedFile([], [ImportIssue("expected a .csv or .json file")])
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets write a BOM
    except (OSError, UnicodeDecodeError) as err:
        return ParsedFile([], [ImportIssue(f"cannot read the file as UTF-8 text ({err})")])
    return parse_text(text, suffix)


def parse_orders(path: Path) -> list[ImportedOrder]:
    """The file's orders, checked for form only (not against a catalogue); raises ImportFailed."""
    parsed = parse_file(path)
    if parsed.issues:
        raise ImportFailed(_sorted(parsed.issues))
    return [_to_order(g) for g in parsed.groups]


# --- checks against the catalogue, and the orders they make --------------------------------------


@dataclass
class Catalogue:
    """What the file refers to, as the store has it: events, and their ticket types and time slots by id."""

    events: dict[str, Event]
    types: dict[str, dict[str, TicketType]]
    slots: dict[str, dict[str, TimeSlot]]


def _check_catalogue(groups: list[list[_Row]], cat: Catalogue, taken: set[str]) -> list[ImportIssue]:
    """What only the store can tell: unknown events and types, taken codes, quotas."""
    issues: list[ImportIssue] = []
    firsts = {g[0].values["order_code"]: g[0] for g in groups if "order_code" in g[0].values}
    for code in sorted(taken & set(firsts)):
        issues.append(ImportIssue(f"order {code} exists already", firsts[code].number, "order_code"))
    lines: list[tuple[_Row, Event]] = []
    for first, *others in groups:
        event_id = first.values.get("event_id")
        event = cat.events.get(event_id or "")
        if event_id and event is None:
            issues.append(ImportIssue(f"no event {event_id}", first.number, "event_id"))
        elif event and event.cancelled:
            issues.append(ImportIssue(f"event {event_id} is cancelled", first.number, "event_id"))
        if event:
            lines += [(row, event) for row in (first, *others)]
    asked: Counter[str] = Counter()
    for row, event in sorted(lines, key=lambda line: line[0].number):
        types, slots = cat.types[event.id], cat.slots[event.id]
        type_id, slot_id = row.values.get("ticket_type_id"), row.values.get("time_slot_id")
        ticket_type, slot = types.get(type_id or ""), slots.get(slot_id or "")
        if type_id and ticket_type is None:
            issues.append(ImportIssue(f"no ticket type {type_id} in event {event.id}", row.number, "ticket_type_id"))
        if slot_id and slot is None:
            issues.append(ImportIssue(f"no time slot {slot_id} in event {event.id}", row.number, "time_slot_id"))
        elif not slot_id and slots:
            problem = f"required: event {event.id} has time slots ({', '.join(sorted(slots))})"
            issues.append(ImportIssue(problem, row.number, "time_slot_id"))
        quantity = row.values.get("quantity") or 0
        limits = [(f"ticket type {t.id}", t.quota - t.sold) for t in [ticket_type] if t]
        limits += [(f"time slot {s.id}", s.capacity - s.sold) for s in [slot] if s]
        for what, left in limits:
            before, asked[what] = asked[what], asked[what] + quantity
            if before <= left < asked[what]:  # report where the file first goes over
                problem = f"{what} has {left} left; the file asks for {asked[what]} up to this row"
                issues.append(ImportIssue(problem, row.number, "quantity"))
    return issues


def validate(parsed: ParsedFile, cat: Catalogue, taken: set[str]) -> list[ImportedOrder]:
    """The file's orders, checked for form and against the catalogue and the `taken` codes.

    Raises ImportFailed with every problem, sorted by row and column.
    """
    issues = parsed.issues + _check_catalogue(parsed.groups, cat, taken)
    if issues:
        raise ImportFailed(_sorted(issues))
    return [_to_order(g) for g in parsed.groups]


def build_imported_order(item: ImportedOrder, cat: Catalogue, *, code: str, now: datetime) -> Order:
    """The order an imported item describes; its fees are refundable as the event's policy says."""
    event = cat.events[item.event_id]
    types = cat.types[event.id]
    fees = [
        Fee(kind=kind, amount=Money(amount=cents, currency=event.currency), refundable=refund)
        for kind, cents, refund in (
            (FeeKind.SERVICE, item.service_fee, event.policy.refund_service_fees),
            (FeeKind.BOOKING, item.booking_fee, event.policy.refund_booking_fees),
        )
        if cents
    ]
    return build_order(
        event=event, items=[(types[ln.ticket_type_id], ln.time_slot_id) for ln in item.lines
                            for _ in range(ln.quantity)],
        contact=item.contact, method=item.payment_method, fees=fees, created_at=item.created_at or now,
        status=item.status, payment_reference=item.payment_reference, card_last4=item.card_last4, code=code,
    )
