"""Receipts as PDF with fpdf2: Thai text in a TLWG TrueType font, shaped by HarfBuzz (so vowels
and tone marks sit where they belong), and a QR code (segno) that leads to the verify URL."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF

from application.ports import ReceiptPrinter
from domain.calendar import BANGKOK, buddhist_era_year
from domain.promptpay import format_amount
from infrastructure.errors import InfrastructureError

# Debian's fonts-thai-tlwg (installed by scripts/setup-venv.sh). Garuda has Latin and Thai.
FONT_DIRS = (Path("/usr/share/fonts/truetype/tlwg"), Path("/usr/share/fonts/opentype/tlwg"))
FONT_FILES = {"": "Garuda.ttf", "B": "Garuda-Bold.ttf"}
THAI_MONTHS = ("มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม", "สิงหาคม",
               "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม")
METHODS = {"cash": "เงินสด", "promptpay": "พร้อมเพย์ (QR)"}


class ThaiFontMissing(InfrastructureError):
    """No Thai TrueType font is installed (Debian: fonts-thai-tlwg)."""


def thai_date(at: datetime) -> str:
    """``30 พฤศจิกายน 2569``: the Bangkok day, Thai month name, Buddhist-era year."""
    local = at.astimezone(BANGKOK)
    return f"{local.day} {THAI_MONTHS[local.month - 1]} {buddhist_era_year(local.year)}"


def font_paths() -> dict[str, Path]:
    for folder in FONT_DIRS:
        found = {style: folder / name for style, name in FONT_FILES.items()}
        if all(p.is_file() for p in found.values()):
            return found
    raise ThaiFontMissing("no Thai font: install fonts-thai-tlwg (scripts/setup-venv.sh does)")


def baht(satang: int) -> str:
    whole, _, cents = format_amount(satang).partition(".")
    return f"{int(whole):,}.{cents}"


class FpdfReceiptPrinter(ReceiptPrinter):
    def __init__(self) -> None:
        self.fonts = font_paths()

    def pdf(self, receipt: dict[str, Any], organization: dict[str, Any], verify_url: str) -> bytes:
        pdf = FPDF(format=(148, 210), unit="mm")  # A5
        pdf.set_auto_page_break(auto=False)
        for style, path in self.fonts.items():
            pdf.add_font("Garuda", style=style, fname=str(path))
        pdf.set_text_shaping(True)
        pdf.set_title(f"ใบเสร็จรับเงิน {receipt['number']}")
        pdf.set_creator("OneStop")
        pdf.add_page()
        width = pdf.epw
        pdf.set_font("Garuda", "B", 16)
        pdf.cell(width, 9, "ใบเสร็จรับเงิน", align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Garuda", "", 11)
        pdf.cell(width, 6, organization.get("name_th") or receipt["organization"], align="C", new_x="LMARGIN", new_y="NEXT")
        if organization.get("tax_id"):
            pdf.cell(width, 6, f"เลขประจำตัวผู้เสียภาษี {organization['tax_id']}", align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        issued_at = receipt["issued_at"] if isinstance(receipt["issued_at"], datetime) else datetime.fromisoformat(str(receipt["issued_at"]))
        for label, value in (
            ("เลขที่", receipt["number"]),
            ("ปีงบประมาณ", str(receipt["fiscal_year"])),
            ("วันที่", thai_date(issued_at)),
            ("ได้รับเงินจาก", receipt["payer"].get("name") or "-"),
            ("เลขอ้างอิง", receipt["reference"]),
            ("ชำระโดย", METHODS.get(receipt["method"], receipt["method"])),
        ):
            pdf.set_font("Garuda", "B", 10)
            pdf.cell(32, 6, label)
            pdf.set_font("Garuda", "", 10)
            pdf.cell(width - 32, 6, value, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font("Garuda", "B", 10)
        pdf.cell(width - 60, 7, "รายการ", border=1)
        pdf.cell(25, 7, "รหัสรายรับ", border=1, align="C")
        pdf.cell(35, 7, "จำนวนเงิน (บาท)", border=1, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Garuda", "", 10)
        for item in receipt["items"]:
            pdf.cell(width - 60, 7, item["description"], border=1)
            pdf.cell(25, 7, item.get("revenue_code", ""), border=1, align="C")
            pdf.cell(35, 7, baht(item["amount_satang"]), border=1, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Garuda", "B", 10)
        pdf.cell(width - 35, 7, "รวมเงิน", border=1, align="R")
        pdf.cell(35, 7, baht(receipt["amount_satang"]), border=1, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Garuda", "", 10)
        pdf.multi_cell(width, 7, f"({receipt['amount_words']})", align="C", new_x="LMARGIN", new_y="NEXT")
        if receipt["status"] == "void":
            pdf.set_font("Garuda", "B", 14)
            pdf.set_text_color(200, 0, 0)
            pdf.cell(width, 9, f"ยกเลิก: {receipt.get('void_reason') or ''}", align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
        qr = io.BytesIO()
        segno.make(verify_url, error="m").save(qr, kind="png", scale=6, border=2)
        qr.seek(0)
        top = pdf.get_y() + 4
        pdf.image(qr, x=pdf.l_margin, y=top, w=30, h=30)
        pdf.set_xy(pdf.l_margin + 34, top + 4)
        pdf.set_font("Garuda", "", 8)
        pdf.multi_cell(width - 34, 5, f"ตรวจสอบใบเสร็จนี้ได้ที่\n{verify_url}", new_x="LMARGIN", new_y="NEXT")
        return bytes(pdf.output())
