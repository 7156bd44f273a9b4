from tests.cli.conftest import Cli
from tests.e2e.bulk_support import buyers, event_with_orders
from ticketing.models import PaymentMethod

async def test_peek(cli: Cli) -> None:
    _, order = await cli.order(tickets=2, method=PaymentMethod.INVOICE)
    for args in (("orders", "search"), ("orders", "resend", order.code, "--wait"), ("orders", "show", order.code),
                 ("refunds", "request", order.code, "--amount", "10", "--reason", "goodwill", "--yes", "--wait", "--idempotency-key", "x"),
                 ("operations", "watch", f"refund/{order.code}/x", "--timeout", "1"),
                 ("orders", "cancel", order.code, "--reason", "asked", "--refund", "--wait")):
        r = await cli.run(*args)
        print("$", " ".join(args), "->", r.exit_code)
        print(r.output)
    event, _, _ = await event_with_orders(cli.h, buyers(5))
    r = await cli.run("bulk", "deliver", event.id)
    print(r.output)
