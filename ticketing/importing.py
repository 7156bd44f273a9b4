"""Import orders from a CSV or JSON file, all or nothing.

Format: one row per ticket line; JSON is a list of objects with the same keys
(values are text or whole numbers; null means empty). Columns:

=================  ========  ===============================================
order_code         optional  rows with the same code form one order; an empty
                             code makes the row an order of its own, with a
                             generated code
event_id           required  must exist in the store, not cancelled; the
                             currency comes from it
ticket_type_id     required  a ticket type of that event
time_slot_id       optional  required when the event has time slots; not a
                             cancelled one
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
reported at once (an upload lists the first MAX_ISSUES in row order and counts
them all), and a file with any error imports nothing: the operator fixes the
file and runs it again, instead of working out which half went in. Text that no
field may hold (control characters other than line breaks, surrogates) is an
error of its row and field.

This module is the pure half: parsing a file's text, and checking it against a
catalogue (events, ticket types, time slots) and the codes already taken, either
whole (`parse_text`, `validate`) or as it arrives (`FileCheck`, a batch of rows
at a time, by the same rules). `ticketing/store/importing.py` loads those from
the store, stages an upload's rows, and writes the orders.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ticketing.errors import DomainError
from ticketing.import_reading import CsvRecords, JsonRecords
from ticketing.issuing import build_order
from ticketing.models import Contact, Event, Fee, FeeKind, Model, Order, PaymentMethod, TicketType, TimeSlot
from ticketing.money import Money
from ticketing.personal_data import text_problem
from ticketing.policies.actions import slot_called_off_refusal
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
_MAX_UNKNOWN_COLUMNS = 100  # distinct unknown JSON keys reported; a file with more has bigger problems
MAX_ISSUES = 1000  # problems listed in an answer; all are counted


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
    """The file has problems; `issues` lists them (the first MAX_ISSUES of `total`), and nothing was imported."""

    type = "import-invalid"

    def __init__(self, issues: list[ImportIssue], *, total: int | None = None, detail: str | None = None) -> None:
        self.total = len(issues) if total is None else total
        listed = f"; the first {len(issues)} are listed" if self.total > len(issues) else ""
        super().__init__(detail or f"{self.total} problem(s) in the file; nothing was imported{listed}")
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
class FileRow:
    """One data row: its cells as text, and those that parsed."""

    number: int
    cells: dict[str, str]  # every column, as stripped text ("" when empty)
    values: dict[str, Any] = field(default_factory=dict)  # the cells that parsed


def _cells(number: int, record: dict[str, Any], issues: list[ImportIssue]) -> FileRow:
    """A record's cells as stripped text; a value that is not text or a whole number, or text no
    field may hold (control characters, surrogates), is reported and left out."""
    cells = {}
    for name in COLUMNS:
        value = record.get(name)
        if value is None:
            cells[name] = ""
        elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            text = str(value)
            if not text.isprintable() and (problem := text_problem(text, multiline=True)):
                issues.append(ImportIssue(f"the text {problem}", number, name))
            else:
                cells[name] = text.strip()
        else:
            issues.append(ImportIssue("expected text or a whole number", number, name))
    return FileRow(number, cells)


class _RowReader:
    """The rows of a CSV or JSON file as its text arrives, with the file's own problems.

    Problems go to the list each `feed` is given: those of the file (header, format) without
    a row, those of a row with its number. `missing` is the required columns a CSV header lacks.
    """

    def __init__(self, suffix: str) -> None:
        self.missing: set[str] = set()
        self._csv = CsvRecords() if suffix == ".csv" else None
        self._json = JsonRecords() if suffix != ".csv" else None
        self._columns: list[str] | None = None
        self._keys: set[str] = set()  # the JSON keys seen, up to a bound, for unknown columns
        self._rows = 0
        self._troubled = False  # a problem of the file or of a record: "no data rows" would add nothing
        self._error_told = False

    def feed(self, text: str, issues: list[ImportIssue], *, final: bool = False) -> list[FileRow]:
        found: list[ImportIssue] = []
        rows = self._feed_csv(text, final, found) if self._csv else self._feed_json(text, final, found)
        self._troubled |= bool(found)
        self._rows += len(rows)
        if final:
            if not self._rows and not self._troubled:
                found.append(ImportIssue("the file has no data rows"))
            if self._columns:
                found += [ImportIssue("unknown column", field=c) for c in self._columns if c not in COLUMNS]
                found += [ImportIssue("the column is missing", field=c) for c in COLUMNS if c in self.missing]
        issues += found
        return rows

    def _feed_csv(self, text: str, final: bool, issues: list[ImportIssue]) -> list[FileRow]:
        assert self._csv is not None
        records = self._csv.feed(text, final=final)
        if self._columns is None and self._csv.header is not None:
            self._columns = [c.strip().lower() for c in self._csv.header]
            counts = Counter(self._columns)
            issues += [ImportIssue("the column appears twice", field=c) for c, n in counts.items() if n > 1]
            self.missing = {c for c in REQUIRED if c not in counts} if self._columns else set()
        columns = self._columns or []
        rows = []
        for number, values in records:
            if len(values) > len(columns):
                issues.append(ImportIssue("more cells than the header has columns", number))
            rows.append(_cells(number, dict(zip(columns, values, strict=False)), issues))
        if self._csv.error is not None and not self._error_told:
            issues.append(ImportIssue(f"not valid CSV: {self._csv.error}"))
            self._error_told = True
        return rows

    def _feed_json(self, text: str, final: bool, issues: list[ImportIssue]) -> list[FileRow]:
        assert self._json is not None
        rows = []
        for number, item in self._json.feed(text, final=final):
            if not isinstance(item, dict):
                issues.append(ImportIssue("expected an object of column names", number))
                continue
            for key in item:
                if key not in self._keys and len(self._keys) < len(COLUMNS) + _MAX_UNKNOWN_COLUMNS:
                    self._keys.add(key)
                    if key not in COLUMNS:
                        issues.append(ImportIssue("unknown column", field=key))
            rows.append(_cells(number, item, issues))
        if not self._error_told and (self._json.error is not None or self._json.not_a_list):
            message = ("expected a JSON list of objects, one per row" if self._json.not_a_list
                       else f"not valid JSON: {self._json.error}")
            issues.append(ImportIssue(message))
            self._error_told = True
        return rows


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


def _parse_row(row: FileRow, issues: list[ImportIssue], missing: set[str]) -> None:
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


def _compare(first: FileRow, row: FileRow, issues: list[ImportIssue]) -> None:
    """A later row of an order must repeat its first row's order-level values."""
    for name in ORDER_FIELDS:
        if any(r.cells.get(name) and name not in r.values for r in (first, row)):
            continue  # a value that does not parse is reported already
        if first.values.get(name, first.cells.get(name)) != row.values.get(name, row.cells.get(name)):
            problem = f"differs from row {first.number}, the first row of order {first.values['order_code']}"
            issues.append(ImportIssue(problem, row.number, name))


def _grouped(row: FileRow) -> bool:
    """Whether the row belongs to an order: a row with a code that does not parse is reported already."""
    return bool(row.values.get("order_code") or not row.cells.get("order_code"))


def _group(rows: list[FileRow], issues: list[ImportIssue]) -> list[list[FileRow]]:
    """Rows by order code (an empty code is an order of its own); later rows must agree."""
    groups: dict[str | int, list[FileRow]] = {}
    for row in rows:
        if _grouped(row):
            groups.setdefault(row.values.get("order_code") or row.number, []).append(row)
    for first, *others in groups.values():
        for row in others:
            _compare(first, row, issues)
    return list(groups.values())


def _to_order(group: list[FileRow]) -> ImportedOrder:
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

    groups: list[list[FileRow]]
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
    reader = _RowReader(suffix)
    rows = reader.feed(text, issues, final=True)
    for row in rows:
        _parse_row(row, issues, reader.missing)
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


def _check_order(first: FileRow, cat: Catalogue, taken: set[str], issues: list[ImportIssue]) -> Event | None:
    """An order's own checks against the store, at its first row; its event, if the store has it."""
    code = first.values.get("order_code")
    if code in taken:
        issues.append(ImportIssue(f"order {code} exists already", first.number, "order_code"))
    event_id = first.values.get("event_id")
    event = cat.events.get(event_id or "")
    if event_id and event is None:
        issues.append(ImportIssue(f"no event {event_id}", first.number, "event_id"))
    elif event and slot_called_off_refusal(event, None):
        issues.append(ImportIssue(f"event {event_id} is cancelled", first.number, "event_id"))
    return event


def _check_line(row: FileRow, event: Event, cat: Catalogue, asked: Counter[str], issues: list[ImportIssue]) -> None:
    """A row's ticket type and time slot in its order's event; `asked` counts the seats so far, in row order."""
    types, slots = cat.types[event.id], cat.slots[event.id]
    type_id, slot_id = row.values.get("ticket_type_id"), row.values.get("time_slot_id")
    ticket_type, slot = types.get(type_id or ""), slots.get(slot_id or "")
    if type_id and ticket_type is None:
        issues.append(ImportIssue(f"no ticket type {type_id} in event {event.id}", row.number, "ticket_type_id"))
    if slot_id and slot is None:
        issues.append(ImportIssue(f"no time slot {slot_id} in event {event.id}", row.number, "time_slot_id"))
    elif slot and not event.cancelled and (refusal := slot_called_off_refusal(event, slot.id)):
        issues.append(ImportIssue(refusal.reason, row.number, "time_slot_id"))  # the event's is at its first row
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


def _check_catalogue(groups: list[list[FileRow]], cat: Catalogue, taken: set[str]) -> list[ImportIssue]:
    """What only the store can tell: unknown events and types, taken codes, quotas."""
    issues: list[ImportIssue] = []
    lines: list[tuple[FileRow, Event]] = []
    for first, *others in groups:
        if event := _check_order(first, cat, taken, issues):
            lines += [(row, event) for row in (first, *others)]
    asked: Counter[str] = Counter()
    for row, event in sorted(lines, key=lambda line: line[0].number):
        _check_line(row, event, cat, asked, issues)
    return issues


def validate(parsed: ParsedFile, cat: Catalogue, taken: set[str]) -> list[ImportedOrder]:
    """The file's orders, checked for form and against the catalogue and the `taken` codes.

    Raises ImportFailed with every problem, sorted by row and column.
    """
    issues = parsed.issues + _check_catalogue(parsed.groups, cat, taken)
    if issues:
        raise ImportFailed(_sorted(issues))
    return [_to_order(g) for g in parsed.groups]


# --- a file checked as it arrives -------------------------------------------------------------------


@dataclass(frozen=True)
class StagedRow:
    """What is kept of a checked row until the file is whole: its non-empty cells, and its order's first row."""

    row: int
    code: str | None  # the code the file gives; None: an order of its own, its code generated later
    first_row: int
    cells: dict[str, str]


def restore_row(number: int, cells: dict[str, str]) -> FileRow:
    """A staged row as `FileCheck` read it: every column, and the values that parse."""
    row = FileRow(number, {name: cells.get(name, "") for name in COLUMNS})
    _parse_row(row, [], set())
    return row


def staged_order(rows: list[FileRow], code: str) -> ImportedOrder:
    """The order that a clean file's rows of one order (first row first) describe, with its code."""
    return _to_order(rows).model_copy(update={"code": code})


class FileCheck:
    """A file checked as it arrives, by the rules of `parse_text` and `validate`, a batch of rows at a time.

    It holds no row beyond the batch: the caller stages each checked row and hands back, for
    the next batches, the first row of any order they continue (rows of one order need not be
    adjacent). What spans the whole file and stays small is kept here: the seats asked per
    ticket type and time slot, the counts, and the problems, the first `max_issues` of them in
    row order (every one is counted).
    """

    def __init__(self, suffix: str, *, max_issues: int = MAX_ISSUES) -> None:
        self.orders = 0
        self.tickets = 0
        self.problems = 0
        self._max = max_issues
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._reader = _RowReader(suffix)
        self._pending: list[ImportIssue] = []  # problems of rows read and not yet checked
        self._file: list[ImportIssue] = []
        self._rows: list[ImportIssue] = []
        self._asked: Counter[str] = Counter()

    def read(self, data: bytes, *, final: bool = False) -> list[FileRow]:
        """The rows `data` completes, parsed; raises ImportFailed if the file is not UTF-8."""
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as err:
            raise ImportFailed([ImportIssue(str(err))], detail="the file is not UTF-8 text") from err
        rows = self._reader.feed(text, self._pending, final=final)
        for row in rows:
            _parse_row(row, self._pending, self._reader.missing)
        return rows

    @staticmethod
    def lookups(rows: list[FileRow]) -> tuple[set[str], set[str]]:
        """The order codes and event ids of `rows`: the caller looks up those codes' first rows among
        the staged ones, and which of the codes the store has taken, and loads those events."""
        codes = {r.values["order_code"] for r in rows if "order_code" in r.values}
        return codes, {r.values["event_id"] for r in rows if "event_id" in r.values}

    def check(self, rows: list[FileRow], firsts: dict[str, FileRow], taken: set[str], cat: Catalogue
              ) -> list[StagedRow]:
        """Check `rows` (in file order, after every row checked before) and say what to stage.

        `firsts`: the first row of each order of `rows` that began in an earlier batch (this
        call adds the orders that begin here); `taken`: those of the codes the store has;
        `cat`: holding at least the events of `rows` and of `firsts`.
        """
        issues, self._pending = self._pending, []
        staged = []
        for row in rows:
            if not _grouped(row):
                continue
            code = row.values.get("order_code")
            first = firsts.get(code) if code else None
            if first is None:
                first = row
                if code:
                    firsts[code] = row
                self.orders += 1
                event = _check_order(row, cat, taken, issues)
            else:
                _compare(first, row, issues)
                event = cat.events.get(first.values.get("event_id") or "")
            if event:
                _check_line(row, event, cat, self._asked, issues)
            self.tickets += row.values.get("quantity") or 0
            staged.append(StagedRow(row.number, code, first.number, {k: v for k, v in row.cells.items() if v}))
        self._keep(issues)
        return staged

    def _keep(self, issues: list[ImportIssue]) -> None:
        self.problems += len(issues)
        for issue in _sorted(issues):
            kept = self._rows if issue.row else self._file
            if len(kept) < self._max:
                kept.append(issue)

    def failure(self) -> ImportFailed | None:
        """After the last batch: the file's problems, or None when it is clean."""
        self._keep(self._pending)
        self._pending = []
        if not self.problems:
            return None
        return ImportFailed((_sorted(self._file) + self._rows)[:self._max], total=self.problems)


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
