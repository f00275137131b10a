"""Real files made by the tests: PDFs with known text on known pages, an encrypted PDF, DOCX (and a zip bomb
dressed as one), pictures with EXIF GPS, a PNG decompression bomb, SVG with script, truncated and lying files."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib


def page_text(number: int) -> str:
    """The known text of page `number` of `make_pdf`'s documents: a word no other page has."""
    return f"Page {number} is about the topic zebra{number:03d}word and nothing else."


def make_pdf(pages: int = 3, *, text=page_text) -> bytes:
    """A PDF of `pages` pages whose page n says `text(n)` (fpdf2, a pure-Python writer)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.multi_cell(0, 8, text(number))
    return bytes(pdf.output())


def make_scanned_pdf() -> bytes:
    """A PDF with a page but no text on it (as a scan without OCR would be)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 50, 50)
    return bytes(pdf.output())


def make_encrypted_pdf(password: str = "s3cret") -> bytes:
    """A PDF that needs a password to be read (pypdf encrypts it)."""
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(make_pdf(2)))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    """A Word document with a title, two headings, paragraphs under each, and a table."""
    import docx

    document = docx.Document()
    document.add_heading("Staff handbook", level=0)
    document.add_heading("Holidays", level=1)
    document.add_paragraph("Everyone gets twenty-eight days of holiday a year, called walrusdays here.")
    document.add_heading("Expenses", level=1)
    document.add_paragraph("Trains are paid second class; receipts go to the narwhal office.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Item", "Limit"
    table.cell(1, 0).text, table.cell(1, 1).text = "Hotel", "120 EUR"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_docx_bomb(inflated_mb: int = 200) -> bytes:
    """A zip that looks like a DOCX (the right part names) whose document.xml inflates to `inflated_mb` MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b" " * 2**20
            for _ in range(inflated_mb):
                part.write(block)
    return out.getvalue()


def make_jpeg_with_gps(size=(64, 48)) -> bytes:
    """A JPEG whose EXIF names a camera and a GPS position."""
    from PIL import ExifTags, Image

    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Model] = "Model X"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def make_png(size=(40, 30), mode="RGB", *, exif_gps: bool = False) -> bytes:
    """A PNG picture (with an eXIf chunk holding GPS when asked)."""
    from PIL import ExifTags, Image

    image = Image.new(mode, size, (10, 120, 200, 128) if mode == "RGBA" else (10, 120, 200))
    out = io.BytesIO()
    if exif_gps:
        exif = Image.Exif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
        image.save(out, "PNG", exif=exif)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def make_gif(frames: int = 3) -> bytes:
    """An animated GIF: the first frame red, the others blue."""
    from PIL import Image

    images = [Image.new("RGB", (20, 20), (255, 0, 0) if i == 0 else (0, 0, 255)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def make_webp() -> bytes:
    """A small WebP picture."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (30, 30), (0, 200, 0)).save(out, "WEBP")
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def make_png_bomb(side: int = 10000) -> bytes:
    """A valid grey PNG of side × side pixels, all black, whose few hundred kilobytes inflate to side² bytes."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + one byte per pixel
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


SVG_WITH_SCRIPT = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                   b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>')


TUS = {"Tus-Resumable": "1.0.0"}


def tus_metadata(name: str) -> str:
    """An Upload-Metadata header naming the file."""
    import base64

    return "filename " + base64.b64encode(name.encode()).decode()


def tus_create(client, length: int, name: str = "file.bin", headers: dict | None = None):
    """POST /files; the response."""
    return client.post("/files", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": tus_metadata(name),
                                          **(headers or {})})


def tus_patch(client, location: str, offset: int, body: bytes, headers: dict | None = None):
    """PATCH one piece at `offset`; the response."""
    return client.patch(location, data=body, headers={**TUS, "Upload-Offset": str(offset),
                                                      "Content-Type": "application/offset+octet-stream",
                                                      **(headers or {})})


def tus_upload(client, data: bytes, name: str, headers: dict | None = None, pieces: int = 2) -> str:
    """Create and send `data` in `pieces` PATCHes, as a resuming client would (HEAD before each); the file id."""
    created = tus_create(client, len(data), name, headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    step = max(1, -(-len(data) // pieces))
    for start in range(0, len(data), step):
        offset = int(client.head(location, headers={**TUS, **(headers or {})}).headers["Upload-Offset"])
        assert offset == start
        answer = tus_patch(client, location, offset, data[start:start + step], headers)
        assert answer.status_code == 204, answer.get_data(as_text=True)
    return location.rsplit("/", 1)[1]


def make_pdf_bomb(inflated_mb: int = 200) -> bytes:
    """A one-page PDF written by hand whose content stream inflates from a few hundred KB to `inflated_mb` MB."""
    compressor = zlib.compressobj(9)
    block = b" " * 2**20
    stream = b"".join(compressor.compress(block) for _ in range(inflated_mb)) + compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
