"""What counts as an image: its first bytes, and how large one may be.

    sniff_image_mime(data)     # "image/png", or None for anything that is not a raster image

A file's name and the client's Content-Type are both chosen by whoever sent it, so neither is
trusted: uploads and generated images are recognised by their magic bytes alone.
"""

from __future__ import annotations

# An upload, and so a generated image (stored as an upload), is at most this large.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def sniff_image_mime(data: bytes) -> str | None:
    """The image type named by the file's magic bytes, or None for anything else (SVG and
    HTML included: both can carry scripts)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
