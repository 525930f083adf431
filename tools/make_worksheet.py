"""Write notebooks/data/worksheet.pdf: a one-page worksheet with a known text (lesson 9).

The PDF is written by hand (one page, Helvetica, one text line per row), so the project needs
no PDF-writing library and the file is byte-for-byte reproducible: run
``.venv/bin/python tools/make_worksheet.py`` and ``git diff`` shows nothing.
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "worksheet.pdf"

#: The worksheet's lines; tests and the lesson check the extracted text against these.
LINES = [
    "Worksheet 3: Right triangles",
    "1. A right triangle has legs 3 cm and 4 cm. How long is the hypotenuse?",
    "2. The hypotenuse is 13 cm and one leg is 5 cm. How long is the other leg?",
    "3. Is a triangle with sides 6, 8 and 11 a right triangle? Explain.",
    "Hint: use the Pythagorean theorem a^2 + b^2 = c^2.",
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def worksheet_pdf(lines: list[str]) -> bytes:
    """Return a one-page PDF showing ``lines`` top to bottom."""
    rows = [f"BT /F1 {16 if i == 0 else 12} Tf 60 {760 - 30 * i} Td ({_escape(line)}) Tj ET"
            for i, line in enumerate(lines)]
    stream = "\n".join(rows).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def main() -> None:
    """Write the worksheet PDF next to the lessons."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(worksheet_pdf(LINES))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
