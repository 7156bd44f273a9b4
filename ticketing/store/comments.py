"""Comments on a purchase, or on a buyer (shown on every order of that buyer)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.models import Comment, CommentScope
from ticketing.store.tables import comments


async def add_comment(conn: AsyncConnection, comment: Comment) -> Comment:
    result = await conn.execute(
        comments.insert().values(
            scope=comment.scope.value,
            order_code=comment.order_code,
            buyer_email=comment.buyer_email.lower() if comment.buyer_email else None,
            author=comment.author,
            text=comment.text,
            at=comment.at,
        )
    )
    return comment.model_copy(update={"id": result.inserted_primary_key[0]})  # type: ignore[index]


async def comments_for_order(conn: AsyncConnection, order_code: str, buyer_email: str | None) -> list[Comment]:
    condition = sa.and_(comments.c.scope == CommentScope.PURCHASE.value, comments.c.order_code == order_code)
    if buyer_email:
        condition = sa.or_(
            condition,
            sa.and_(comments.c.scope == CommentScope.BUYER.value, comments.c.buyer_email == buyer_email.lower()),
        )
    rows = (await conn.execute(sa.select(comments).where(condition).order_by(comments.c.at))).all()
    return [
        Comment(
            id=r.id,
            scope=CommentScope(r.scope),
            order_code=r.order_code,
            buyer_email=r.buyer_email,
            author=r.author,
            text=r.text,
            at=r.at,
        )
        for r in rows
    ]
