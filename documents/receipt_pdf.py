"""Receipt PDF: items, fees, refunds and the total of one order."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.fonts import FontFace

from documents.formatting import format_datetime
from documents.models import ReceiptDocument, ReceiptLine
from documents.pdf_fonts import Typeface, start_pdf

_MARGIN = 15.0
_COLUMNS = (95.0, 15.0, 35.0, 35.0)
_ALIGN = ("LEFT", "RIGHT", "RIGHT", "RIGHT")
_GREY = (110, 110, 110)


def _texts(doc: ReceiptDocument) -> list[str]:
    texts = [doc.order_code, doc.buyer_name or "", doc.total_display, doc.payment_method]
    for line in [*doc.lines, *doc.fees, *doc.refunds]:
        texts += [line.description, line.unit_price_display, line.total_display]
    return texts


def _section(pdf: FPDF, face: Typeface, title: str, lines: list[ReceiptLine]) -> None:
    if not lines:
        return
    pdf.set_font(face.family, "B", 11)
    pdf.cell(w=pdf.epw, h=8, text=title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(face.family, "", 10)
    headings = FontFace(emphasis="BOLD", color=_GREY)
    with pdf.table(
        col_widths=_COLUMNS,
        text_align=_ALIGN,
        headings_style=headings,
        borders_layout="HORIZONTAL_LINES",
        line_height=6,
        width=sum(_COLUMNS),
        align="LEFT",
    ) as table:
        table.row(["Description", "Qty", "Unit price", "Total"])
        for line in lines:
            table.row(
                [
                    face.clean(line.description),
                    str(line.quantity),
                    face.clean(line.unit_price_display),
                    face.clean(line.total_display),
                ]
            )
    pdf.ln(4)


def render_receipt_pdf(doc: ReceiptDocument) -> bytes:
    """Render a receipt; pages break automatically for long orders."""
    pdf, face = start_pdf(_texts(doc))
    pdf.set_title(face.clean(f"Receipt {doc.order_code}"))
    pdf.set_creation_date(doc.issued_at)  # same input, same bytes: safe to store on retry
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN)
    pdf.add_page()

    pdf.set_font(face.family, "B", 20)
    pdf.cell(w=pdf.epw, h=10, text="Receipt", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(face.family, "", 11)
    header = [f"Order {doc.order_code}", f"Issued {format_datetime(doc.issued_at)}"]
    if doc.buyer_name:
        header.append(f"Billed to {doc.buyer_name}")
    for line in header:
        pdf.multi_cell(w=pdf.epw, h=6, text=face.clean(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    _section(pdf, face, "Items", doc.lines)
    _section(pdf, face, "Fees", doc.fees)
    _section(pdf, face, "Refunds", doc.refunds)

    pdf.set_font(face.family, "B", 13)
    label_width = sum(_COLUMNS[:3])
    pdf.cell(w=label_width, h=8, text="Total")
    pdf.cell(w=_COLUMNS[3], h=8, text=face.clean(doc.total_display), align="R")
    pdf.ln(10)
    pdf.set_font(face.family, "", 10)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(w=pdf.epw, h=5, text=face.clean(f"Paid by {doc.payment_method}"))
    return bytes(pdf.output())
