"""Workflow inputs and results: what the backoffice sends and reads back."""

from __future__ import annotations

from pydantic import BaseModel


class ResendRequest(BaseModel):
    order_code: str
    actor: str


class ResendResult(BaseModel):
    order_code: str
    ticket_count: int
    message_id: str
    delivery: str
