"""Store-level corrections by an agent: a ticket's holder, the order's contact, comments.

No workflow: nothing leaves the building. Each change goes through `save_order` (the one
audit call, with its version check) and records which fields changed, never their values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backoffice.api.auth import SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.fields import EmailAddress, PersonName, PhoneNumber
from backoffice.api.views import CommentView
from ticketing.edits import edit_contact, edit_ticket
from ticketing.errors import ActionNotAllowed
from ticketing.models import Comment, CommentScope, OrderEvent
from ticketing.store.comments import add_comment
from ticketing.store.orders import append_history, load_event, load_order, save_order

router = APIRouter(tags=["order edits"], dependencies=[Depends(SUPPORT)])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]



class _Edit(BaseModel):
    """Only the fields sent are changed; an explicit null clears one (where allowed)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _something(self) -> _Edit:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class TicketEdit(_Edit):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Grace Hopper", "email": "grace@example.com"}]})

    name: PersonName | None = None
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None


class ContactEdit(_Edit):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@example.org", "mobile": "+31 6 1234 5678"}]}
    )

    name: PersonName | None = None
    email: EmailAddress | None = None
    mobile: PhoneNumber | None = None

    @model_validator(mode="after")
    def _keeps_an_email(self) -> ContactEdit:
        if "email" in self.model_fields_set and self.email is None:
            raise ValueError("the contact's email can be corrected, not removed")
        return self


class EditResult(BaseModel):
    order_code: str
    changed: list[str] = Field(description="Names of the fields whose value changed; empty when none did.")
    version: int


class CommentBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"scope": "buyer", "text": "Prefers phone calls after 6 pm."}]},
    )

    scope: CommentScope = Field(description="purchase: this order only; buyer: every order of this buyer")
    text: str = Field(min_length=1, max_length=2000)


def _now() -> datetime:
    return datetime.now(UTC)


@router.patch("/orders/{code}/tickets/{ticket_id}", response_model=EditResult)
async def patch_ticket(code: str, ticket_id: str, body: TicketEdit, st: StateDep, who: ActorDep) -> EditResult:
    """Overwrite one ticket's personalisation (the seeds' "unclaim" of a single ticket)."""
    async with st.store.transaction() as conn:
        order = await load_order(conn, code.upper(), for_update=True)
        event = await load_event(conn, order.event_id)
        after, changed = edit_ticket(order, event, ticket_id, body.changes())
        if changed:
            entry = OrderEvent(
                type="ticket-edited", actor=who, at=_now(), data={"ticket_id": ticket_id, "fields": changed}
            )
            after = await save_order(conn, order, after, [entry])
    return EditResult(order_code=order.code, changed=changed, version=after.version)


@router.patch("/orders/{code}/contact", response_model=EditResult)
async def patch_contact(code: str, body: ContactEdit, st: StateDep, who: ActorDep) -> EditResult:
    """Correct the main booker's name, email or mobile; a verified account keeps its email."""
    async with st.store.transaction() as conn:
        order = await load_order(conn, code.upper(), for_update=True)
        event = await load_event(conn, order.event_id)
        after, changed = edit_contact(order, event, body.changes())
        if changed:
            entry = OrderEvent(type="contact-edited", actor=who, at=_now(), data={"fields": changed})
            after = await save_order(conn, order, after, [entry])
    return EditResult(order_code=order.code, changed=changed, version=after.version)


@router.post("/orders/{code}/comments", status_code=201, response_model=CommentView)
async def post_comment(code: str, body: CommentBody, st: StateDep, who: ActorDep) -> CommentView:
    """A buyer comment shows on every order of the contact's email; a purchase one on this order."""
    now = _now()
    async with st.store.transaction() as conn:
        order = await load_order(conn, code.upper())
        buyer = body.scope is CommentScope.BUYER
        if buyer and not order.contact.email:
            raise ActionNotAllowed("the order's contact has no email address", type="no-contact-email")
        comment = await add_comment(
            conn,
            Comment(
                scope=body.scope,
                order_code=order.code,
                buyer_email=order.contact.email if buyer else None,
                author=who,
                text=body.text,
                at=now,
            ),
        )
        entry = OrderEvent(
            type="comment-added", actor=who, at=now, data={"comment_id": comment.id, "scope": body.scope.value}
        )
        await append_history(conn, order.code, [entry])
    return CommentView(id=comment.id, scope=comment.scope.value, author=comment.author, text=comment.text, at=now)
