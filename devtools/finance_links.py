"""Links into the Temporal Web UI, filtered to what finance acts on (printed by `ticketops dev`).

Each link is the UI's workflow list with a visibility query in `?query=`,
URL-encoded. The reconciliation link appears once the `ReconStatus` search
attribute is registered (it lands with reconciliation).
"""

from __future__ import annotations

from urllib.parse import quote

from ticketing.reconciliation.models import ReconVisibility
from workflows import search_attributes
from workflows.search_attributes import REFUND_STATUS

# The value a reconciliation run's `ReconStatus` takes while it has items finance must resolve.
RECON_ITEMS_OPEN = ReconVisibility.OPEN_ITEMS.value


def _refunds_in(status: str) -> str:
    # Closed runs too: a refund-error run that timed out waiting for finance is still finance's to settle.
    return f'WorkflowType="Refund" AND {REFUND_STATUS.name}="{status}"'


def finance_queries() -> list[tuple[str, str]]:
    """(label, visibility query) for each list finance works from."""
    queries = [
        ("refund errors", _refunds_in("refund-error")),
        ("awaiting manual payout", _refunds_in("awaiting-manual")),
        ("awaiting approval", _refunds_in("awaiting-approval")),
    ]
    if any(key.name == "ReconStatus" for key in search_attributes.ALL):
        queries.append(("open reconciliation items", f'ReconStatus="{RECON_ITEMS_OPEN}"'))
    return queries


def workflow_list_url(ui_base: str, query: str, namespace: str = "default") -> str:
    return f"{ui_base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows?query={quote(query, safe='')}"


def finance_links(ui_base: str, namespace: str = "default") -> list[tuple[str, str]]:
    return [(label, workflow_list_url(ui_base, query, namespace)) for label, query in finance_queries()]
