"""What activities need from the outside world, built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blob_storage.factory import make_blob_store
from blob_storage.stores import BlobStore
from runtime.settings import Settings
from ticketing.store.engine import Store

if TYPE_CHECKING:
    from activities.ticket_pdfs import TicketPdfs
    from email_providers.base import EmailProvider
    from payment_adapters.base import PaymentAdapter
    from payment_adapters.reconciliation import ReconciliationSource
    from ticketing.models import Processor


@dataclass
class Deps:
    settings: Settings
    store: Store
    email: EmailProvider
    payments: dict[Processor, PaymentAdapter] = field(default_factory=dict)
    blobs: BlobStore | None = None
    pdfs: TicketPdfs | None = None
    # What reconciliation reads each processor through (Stripe: its list APIs); none for manual/free.
    recon_sources: dict[Processor, ReconciliationSource] = field(default_factory=dict)

    def blob_store(self) -> BlobStore:
        """Reports go where settings say; built on first use."""
        if self.blobs is None:
            self.blobs = make_blob_store(self.settings.blobs)
        return self.blobs

    def ticket_pdfs(self) -> TicketPdfs:
        """Ticket PDFs, rendered once per content and kept in the blob store."""
        if self.pdfs is None:
            from activities.ticket_pdfs import TicketPdfs  # fpdf2 and fonts: only where tickets are rendered

            self.pdfs = TicketPdfs(self.blob_store(), processes=self.settings.render_processes)
        return self.pdfs
