"""Read back the QR codes embedded in a PDF, the way a door scanner would see them."""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image, ImageOps
from pypdf import PdfReader


def decode_qr_payloads_from_pdf(pdf: bytes) -> list[str]:
    """Text of every QR code in the images embedded in `pdf`, in page and image order."""
    payloads: list[str] = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for embedded in page.images:
            image = embedded.image
            if image is None:
                continue
            payloads.extend(_decode(image))
    return payloads


def _decode(image: Image.Image) -> list[str]:
    gray = image.convert("L")
    if gray.width < 200:  # tiny symbols: give the detector room between modules
        gray = gray.resize((gray.width * 4, gray.height * 4), Image.Resampling.NEAREST)
    gray = ImageOps.expand(gray, border=16, fill=255)
    only_qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    found = zxingcpp.read_barcodes(gray, formats=only_qr)
    return [result.text for result in found if result.valid]
