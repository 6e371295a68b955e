"""Documents to passages: type sniffed from the bytes, text extracted as a stream, chunked.

    kind = sniff_kind(first_bytes, filename)        # "pdf" | "docx" | "html" | "csv" | ...
    for passage, progress in passages(path, kind):  # Passage(text, locator), 0..1
        ...

The type comes from the content (magic bytes, markup), the file name's extension is only a
hint between text formats (CSV vs Markdown vs text); a file that is none of the supported
formats is refused with `UnsupportedFile`. Every parser reads its input as a stream and yields
passages as it goes, so a 50 MB file never sits in memory as one string (PDF and DOCX read
page by page / paragraph by paragraph from their own structures).

Chunks are about `CHUNK_CHARS` characters with `OVERLAP_CHARS` shared with the previous one,
so a sentence cut at a boundary is whole in one of them; each chunk keeps where it came from:
"page 3", "lines 10-24", "rows 2-31", "paragraphs 4-9".
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

CHUNK_CHARS = 800
OVERLAP_CHARS = 120
READ_BYTES = 64 * 1024
MAX_DOCX_UNPACKED_BYTES = 200 * 1024 * 1024  # all parts together, decompressed
MAX_DOCX_MEMBERS = 10_000
KINDS = ("pdf", "docx", "html", "csv", "markdown", "text")
MIMES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
    "csv": "text/csv",
    "markdown": "text/markdown",
    "text": "text/plain",
}
SNIFF_BYTES = 8192


class UnsupportedFile(ValueError):
    """The upload is not one of the supported document types (or is damaged)."""


@dataclass(frozen=True)
class Passage:
    text: str
    locator: str


# -- type by content ---------------------------------------------------------------------------

_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<div", b"<p>")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        # An incremental decoder accepts a multi-byte character cut at the sniff boundary.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def sniff_kind(path: Path, filename: str | None = None) -> str:
    """The document kind of the file at `path`, from its bytes; `filename` only chooses
    between text formats. Raises `UnsupportedFile` for anything else (executables, images,
    archives that are not DOCX, other binary data)."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    ext = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                if "word/document.xml" in z.namelist():
                    _check_unpacked_size(z)
                    return "docx"
        except zipfile.BadZipFile:
            pass
        raise UnsupportedFile("this zip archive is not a Word document (.docx)")
    if not head.strip() or not _looks_like_text(head):
        raise UnsupportedFile(
            "unsupported file type: upload PDF, DOCX, Markdown, text, HTML or CSV"
        )
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if any(lowered.startswith(m) for m in _HTML_MARKERS) or (
        ext in ("html", "htm") and b"<" in lowered
    ):
        return "html"
    if ext == "csv" or (ext == "" and _looks_like_csv(head)):
        return "csv"
    if ext in ("md", "markdown"):
        return "markdown"
    return "text"


def _check_unpacked_size(z: zipfile.ZipFile) -> None:
    """Refuse a zip bomb before python-docx loads every part into memory. The sizes are the
    archive's own claims, but they are also the bound: zipfile stops reading a member at its
    declared size (and a member that decompresses to more fails its CRC check)."""
    infos = z.infolist()
    if len(infos) > MAX_DOCX_MEMBERS:
        raise UnsupportedFile(f"this Word document has more than {MAX_DOCX_MEMBERS} parts")
    if sum(i.file_size for i in infos) > MAX_DOCX_UNPACKED_BYTES:
        raise UnsupportedFile(
            f"this Word document unpacks to more than {MAX_DOCX_UNPACKED_BYTES >> 20} MiB"
        )


def _looks_like_csv(head: bytes) -> bool:
    lines = head.decode("utf-8", "ignore").splitlines()[:5]
    if len(lines) < 2:
        return False
    counts = {line.count(",") for line in lines if line}
    return len(counts) == 1 and counts.pop() > 0


# -- chunking ----------------------------------------------------------------------------------


def _format_locator(unit: str, first: int, last: int) -> str:
    if first == last:
        return f"{unit} {first}"
    return f"{unit}s {first}-{last}"


class Chunker:
    """Accumulates numbered units of text (lines, pages, paragraphs) into overlapping chunks
    that remember which units they span."""

    def __init__(self, unit: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> None:
        self.unit, self.size, self.overlap = unit, size, overlap
        self.buf = ""
        self.marks: list[tuple[int, int]] = []  # (offset in buf, unit number), ascending
        self.fresh = 0  # characters added since the last chunk (not only overlap)

    def add(self, text: str, number: int) -> Iterator[Passage]:
        if not text.strip():
            return
        self.marks.append((len(self.buf), number))
        self.buf += text if text.endswith("\n") else text + "\n"
        self.fresh += len(text)
        while len(self.buf) >= self.size:
            yield self._emit(self._cut())

    def finish(self) -> Iterator[Passage]:
        if self.fresh > 0 and self.buf.strip():
            yield self._emit(len(self.buf))
        self.buf, self.marks, self.fresh = "", [], 0

    def _cut(self) -> int:
        # Prefer a paragraph, line, sentence or word boundary in the last 40% of the chunk.
        window = self.buf[: self.size]
        floor = int(self.size * 0.6)
        for sep in ("\n\n", "\n", ". ", " "):
            at = window.rfind(sep, floor)
            if at != -1:
                return at + len(sep)
        return self.size

    def _number_at(self, offset: int) -> int:
        number = self.marks[0][1]
        for start, n in self.marks:
            if start > offset:
                break
            number = n
        return number

    def _emit(self, cut: int) -> Passage:
        text = self.buf[:cut].strip()
        locator = _format_locator(self.unit, self._number_at(0), self._number_at(max(cut - 1, 0)))
        # The next chunk starts `overlap` characters back, at a word boundary.
        start = max(cut - self.overlap, 0)
        space = self.buf.find(" ", start, cut)
        if 0 < space < cut:
            start = space + 1
        if cut >= len(self.buf):
            start = cut
        first_number = self._number_at(start) if start < len(self.buf) else None
        self.buf = self.buf[start:]
        marks = [(o - start, n) for o, n in self.marks if o >= start]
        if first_number is not None and (not marks or marks[0][0] > 0):
            marks.insert(0, (0, first_number))
        self.marks = marks
        self.fresh = max(0, len(self.buf) - self.overlap) if self.buf else 0
        return Passage(text, locator)


# -- parsers -----------------------------------------------------------------------------------


def _text_lines(path: Path) -> Iterator[tuple[str, float]]:
    """The file's lines decoded as UTF-8 (bad bytes replaced), with the fraction read."""
    total = max(path.stat().st_size, 1)
    with path.open("rb") as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline=None)
        for line in stream:
            yield line, min(raw.tell() / total, 1.0)


def _split_long(text: str, limit: int) -> Iterator[str]:
    """A single huge line (minified text) in pieces the chunker can handle."""
    for start in range(0, len(text), limit):
        yield text[start : start + limit]


def _parse_text(path: Path) -> Iterator[tuple[Passage, float]]:
    chunker = Chunker("line")
    for number, (line, progress) in enumerate(_text_lines(path), start=1):
        for piece in _split_long(line, CHUNK_CHARS):
            for passage in chunker.add(piece, number):
                yield passage, progress
    for passage in chunker.finish():
        yield passage, 1.0


def _parse_csv(path: Path) -> Iterator[tuple[Passage, float]]:
    """Rows grouped into chunks of about CHUNK_CHARS, each starting with the header row so a
    passage read alone still says what its columns are. Row numbers count the header as 1."""
    progress = 0.0

    def lines() -> Iterator[str]:
        nonlocal progress
        for line, p in _text_lines(path):
            progress = p
            yield line

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise UnsupportedFile(f"this CSV file has no header row: {exc}") from exc
    header_text = ", ".join(header)
    rows: list[str] = []
    size = 0
    first = 2
    row_number = 1
    try:
        for row in reader:
            row_number += 1
            text = ", ".join(row)[:CHUNK_CHARS]
            if rows and size + len(text) > CHUNK_CHARS:
                body = "\n".join([header_text, *rows])
                yield Passage(body, _format_locator("row", first, row_number - 1)), progress
                rows, size, first = [], 0, row_number
            rows.append(text)
            size += len(text) + 1
    except csv.Error as exc:
        raise UnsupportedFile(f"this CSV file is malformed near row {row_number}: {exc}") from exc
    if rows:
        body = "\n".join([header_text, *rows])
        yield Passage(body, _format_locator("row", first, row_number)), 1.0


class _HTMLText(HTMLParser):
    """Visible text of an HTML document, block by block; scripts, styles and other
    non-content elements dropped."""

    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})
    BLOCK = frozenset(
        {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table"}
        | {"section", "article", "header", "footer", "blockquote", "pre", "title", "dd", "dt"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.current: list[str] = []
        self.blocks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag in self.BLOCK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip_depth == 0:
            self.current.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        self.current = []
        if text:
            self.blocks.append(text)

    def take(self) -> list[str]:
        blocks, self.blocks = self.blocks, []
        return blocks


def _parse_html(path: Path) -> Iterator[tuple[Passage, float]]:
    parser = _HTMLText()
    chunker = Chunker("paragraph")
    number = 0
    total = max(path.stat().st_size, 1)
    with path.open("rb") as raw:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while block := raw.read(READ_BYTES):
            parser.feed(decoder.decode(block))
            progress = min(raw.tell() / total, 1.0)
            for text in parser.take():
                number += 1
                for piece in _split_long(text, CHUNK_CHARS):
                    for passage in chunker.add(piece, number):
                        yield passage, progress
        parser.feed(decoder.decode(b"", final=True))
        parser.close()
        parser._flush()
        for text in parser.take():
            number += 1
            for passage in chunker.add(text, number):
                yield passage, 1.0
    for passage in chunker.finish():
        yield passage, 1.0


def _parse_pdf(path: Path) -> Iterator[tuple[Passage, float]]:
    """Page by page; chunks never span pages, so every locator is one page."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = len(reader.pages)
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise UnsupportedFile(f"this PDF could not be read: {exc}") from exc
    for index in range(pages):
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception as exc:  # pypdf raises many types on damaged pages
            raise UnsupportedFile(f"page {index + 1} of this PDF could not be read") from exc
        chunker = Chunker("page")
        for piece in _split_long(text, CHUNK_CHARS):
            for passage in chunker.add(piece, index + 1):
                yield passage, (index + 1) / pages
        for passage in chunker.finish():
            yield passage, (index + 1) / pages


def _parse_docx(path: Path) -> Iterator[tuple[Passage, float]]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UnsupportedFile(f"this Word document could not be read: {exc}") from exc
    paragraphs = document.paragraphs
    total = max(len(paragraphs), 1)
    chunker = Chunker("paragraph")
    for number, paragraph in enumerate(paragraphs, start=1):
        for piece in _split_long(paragraph.text, CHUNK_CHARS):
            for passage in chunker.add(piece, number):
                yield passage, number / total
    # Tables carry content too (numbers, names); numbered after the paragraphs.
    number = len(paragraphs)
    for table in document.tables:
        for row in table.rows:
            number += 1
            cells = " | ".join(cell.text for cell in row.cells)
            for passage in chunker.add(cells, number):
                yield passage, 1.0
    for passage in chunker.finish():
        yield passage, 1.0


_PARSERS = {
    "pdf": _parse_pdf,
    "docx": _parse_docx,
    "html": _parse_html,
    "csv": _parse_csv,
    "markdown": _parse_text,
    "text": _parse_text,
}


def passages(path: Path, kind: str) -> Iterator[tuple[Passage, float]]:
    """The document's passages in order, each with the fraction of the input read so far."""
    if kind not in _PARSERS:
        raise UnsupportedFile(f"unsupported file type {kind!r}")
    return _PARSERS[kind](path)


def kind_of_mime(mime: str) -> str:
    for kind, value in MIMES.items():
        if value == mime:
            return kind
    raise UnsupportedFile(f"unsupported file type {mime!r}")
