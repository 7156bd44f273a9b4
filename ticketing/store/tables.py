"""Table definitions, the single source for Alembic's migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on both backends (SQLite forgets the zone otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("venue", sa.String(200)),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("cancelled", sa.Boolean, nullable=False, default=False),
)

time_slots = sa.Table(
    "time_slots",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("label", sa.String(100), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("sold", sa.Integer, nullable=False, default=0),
    sa.Column("cancelled", sa.Boolean, nullable=False, default=False, server_default=sa.false()),  # 0010
    sa.CheckConstraint("sold >= 0 AND sold <= capacity", name="ck_time_slots_sold"),
)

ticket_types = sa.Table(
    "ticket_types",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("quota", sa.Integer, nullable=False),
    sa.Column("sold", sa.Integer, nullable=False, default=0),
    sa.Column("requires_personalisation", sa.Boolean, nullable=False, default=False),
    sa.CheckConstraint("sold >= 0 AND sold <= quota", name="ck_ticket_types_sold"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("event_id", sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("contact_name", sa.String(200)),
    sa.Column("contact_name_search", sa.String(200), index=True),
    sa.Column("contact_email", sa.String(320), index=True),
    sa.Column("contact_mobile", sa.String(40)),
    sa.Column("contact_verified", sa.Boolean, nullable=False, default=False),
    sa.Column("payment_method", sa.String(20), nullable=False),
    sa.Column("processor", sa.String(20), nullable=False),
    sa.Column("payment_reference", sa.String(100), index=True),
    sa.Column("card_last4", sa.String(4)),
    sa.Column("payment_status", sa.String(20), nullable=False),
    sa.Column("payment_amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("dispute_open", sa.Boolean, nullable=False, default=False),
    sa.Column("fees", sa.JSON, nullable=False),
    sa.Column("refunded_total", sa.BigInteger, nullable=False, default=0),
    sa.Column("pending_refund_total", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.CheckConstraint("refunded_total >= 0", name="ck_orders_refunded_nonneg"),
    sa.CheckConstraint("pending_refund_total >= 0", name="ck_orders_pending_nonneg"),
    sa.CheckConstraint(
        "refunded_total + pending_refund_total <= payment_amount", name="ck_orders_no_over_refund"
    ),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("order_code", sa.ForeignKey("orders.code"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("barcode", sa.String(64), nullable=False, unique=True),
    sa.Column("ticket_type_id", sa.ForeignKey("ticket_types.id"), nullable=False),
    sa.Column("time_slot_id", sa.ForeignKey("time_slots.id")),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(30), nullable=False),
    sa.Column("scan_state", sa.String(20), nullable=False),
    sa.Column("requires_personalisation", sa.Boolean, nullable=False, default=False),
    sa.Column("holder_name", sa.String(200)),
    sa.Column("holder_email", sa.String(320)),
    sa.Column("holder_phone", sa.String(40)),
    sa.Column("replaced_by", sa.String(40)),
    sa.Column("in_transfer", sa.Boolean, nullable=False, default=False),
)

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("result", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(100)),
    sa.Column("access_point", sa.String(100)),
    sa.Column("scan_state", sa.String(20)),
)

order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_code", sa.ForeignKey("orders.code"), nullable=False, index=True),
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("dedupe_key", sa.String(300), unique=True),
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("order_code", sa.ForeignKey("orders.code"), nullable=False, index=True),
    sa.Column("buyer_email", sa.String(320), index=True),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("order_code", sa.ForeignKey("orders.code"), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("ticket_ids", sa.JSON, nullable=False),
    sa.Column("fees_kept", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(30), nullable=False, index=True),
    sa.Column("processor", sa.String(20), nullable=False),
    sa.Column("workflow_id", sa.String(300), nullable=False, unique=True),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("processor_refund_id", sa.String(100), index=True),
    sa.Column("failure_reason", sa.String(200)),
    sa.Column("manual_reference", sa.String(200)),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("approved_by", sa.String(200)),
    sa.Column("confirmed_by", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
    sa.CheckConstraint("amount >= 0", name="ck_refunds_amount_nonneg"),
    # A window of one processor's refunds (reconciliation's ledger side, the audit's totals): the
    # window is what is selective; most refunds in it succeeded, so status after it would not narrow.
    sa.Index("ix_refunds_processor_created_at", "processor", "created_at"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("message_id", sa.String(300), primary_key=True),
    sa.Column("order_code", sa.String(32), index=True),
    sa.Column("workflow_id", sa.String(300), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("reason", sa.String(500)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

api_requests = sa.Table(
    "api_requests",
    metadata,
    sa.Column("principal", sa.String(200), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("operation_id", sa.String(300), nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

bulk_operations = sa.Table(
    "bulk_operations",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("event_id", sa.ForeignKey("events.id"), nullable=False, index=True),
    sa.Column("workflow_id", sa.String(300), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("report_uri", sa.String(500)),
    sa.Column("retry_of", sa.String(100)),
    sa.Column("prepared_at", UTCDateTime),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

bulk_items = sa.Table(
    "bulk_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("bulk_id", sa.ForeignKey("bulk_operations.id"), nullable=False),
    sa.Column("key", sa.String(320), nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("message_id", sa.String(300)),
    sa.Column("refund_id", sa.String(40)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("bulk_id", "key", name="uq_bulk_items_bulk_key"),
    sa.Index("ix_bulk_items_bulk_status", "bulk_id", "status"),
)

# --- reconciliation (migration 0006) ------------------------------------------------------------

recon_runs = sa.Table(
    "recon_runs",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),  # the workflow id: reconcile/{processor}/{window}
    sa.Column("processor", sa.String(20), nullable=False, index=True),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("passes", sa.Integer, nullable=False, default=1),  # executions of this window's run
    sa.Column("workflow_id", sa.String(300)),  # the execution doing the latest pass (a schedule's differs)
    sa.Column("counts", sa.JSON, nullable=False),  # {class: n} found in the latest pass
    sa.Column("totals", sa.JSON, nullable=False),  # {currency: {processor, ledger, difference}}
    sa.Column("staged", sa.JSON, nullable=False),  # {refund|balance|event: n} read from the processor
    sa.Column("healed", sa.Integer, nullable=False, default=0),
    sa.Column("resolved", sa.Integer, nullable=False, default=0),
    sa.Column("open_items", sa.Integer, nullable=False, default=0),
    sa.Column("report_uris", sa.JSON, nullable=False),
    sa.Column("error", sa.String(500)),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_recon_runs_window", "processor", "window_start"),
)

recon_items = sa.Table(
    "recon_items",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # item_id(processor, class, key)
    sa.Column("processor", sa.String(20), nullable=False),
    sa.Column("cls", sa.String(40), nullable=False, index=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),
    sa.Column("reason", sa.String(500)),
    sa.Column("actor", sa.String(200)),
    sa.Column("state_at", UTCDateTime, nullable=False),
    sa.Column("suggested_action", sa.String(40), nullable=False),
    sa.Column("ledger", sa.JSON),  # our side's evidence
    sa.Column("processor_side", sa.JSON),  # the processor's evidence
    sa.Column("refund_id", sa.String(40), index=True),
    sa.Column("processor_refund_id", sa.String(100)),
    sa.Column("order_code", sa.String(32)),
    sa.Column("amount", sa.BigInteger),
    sa.Column("currency", sa.String(3)),
    sa.Column("first_seen_run", sa.String(300), nullable=False),
    sa.Column("last_seen_run", sa.String(300), nullable=False, index=True),
    sa.Column("last_seen_pass", sa.Integer, nullable=False),
    sa.Column("healed_at", UTCDateTime),
    sa.Column("healed_by_run", sa.String(300)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# What a run read from the processor, so paging carries only a cursor and classification reads
# pages back by id. Keyed per run; a re-run of the window overwrites its own rows.
recon_staged = sa.Table(
    "recon_staged",
    metadata,
    sa.Column("run_id", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),  # refund | balance | event
    sa.Column("record_id", sa.String(100), primary_key=True),  # re_..., txn_..., evt_...
    sa.Column("ledger_refund_id", sa.String(40)),
    sa.Column("idempotency_key", sa.String(320)),
    sa.Column("link", sa.String(100)),  # refund: payment reference; balance and event: the refund id
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_recon_staged_ledger", "run_id", "kind", "ledger_refund_id"),
    sa.Index("ix_recon_staged_link", "run_id", "kind", "link"),
)

ticket_transfers = sa.Table(
    "ticket_transfers",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("order_code", sa.ForeignKey("orders.code"), nullable=False, index=True),
    sa.Column("ticket_id", sa.ForeignKey("tickets.id"), nullable=False, index=True),
    sa.Column("recipient_name", sa.String(200)),
    sa.Column("recipient_email", sa.String(320), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("new_order_code", sa.String(32)),
    sa.Column("new_ticket_id", sa.String(40)),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# An import's validated orders, one row per order, until its batch writes them (then deleted).
import_rows = sa.Table(
    "import_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("bulk_id", sa.ForeignKey("bulk_operations.id"), nullable=False),
    sa.Column("order_code", sa.String(32), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.UniqueConstraint("bulk_id", "order_code", name="uq_import_rows_bulk_code"),
)

# The rows of an upload being checked (`POST /imports`), kept until the file is whole: checked
# against each other here instead of in memory, then made the import's orders or dropped.
import_staging = sa.Table(
    "import_staging",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("staging_id", sa.String(64), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("order_code", sa.String(32)),
    sa.Column("first_row", sa.Integer, nullable=False),
    sa.Column("cells", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_import_staging_code", "staging_id", "order_code", "row"),
    sa.Index("ix_import_staging_order", "staging_id", "first_row", "row"),
    sa.Index("ix_import_staging_created_at", "created_at"),
)
