"""The width and height an encoded image declares, read from its header without decoding it.

A decoder allocates what the header declares: a 218 KB PNG of 15000x15000 gray pixels
decodes to gigabytes (a decompression bomb). Every place that decodes untrusted bytes
(the folder loader, `predict`, the server's `image_bytes` inputs) reads the declared size
first and refuses images over a pixel limit. TensorFlow's decoders have no such limit, and
PIL's (`Image.MAX_IMAGE_PIXELS`) covers only what PIL opens, so the headers are read here:
they are a few fixed fields per format.

Formats: those `tf.io.decode_image` reads but JPEG XL (its header is bit-packed; its bytes
are refused as unknown): JPEG, PNG, GIF, BMP, WebP.
"""

import struct

IMAGE_BYTES = "image_bytes"  # the input (and signature) of encoded images in our exports
FORMATS = "JPEG, PNG, GIF, BMP or WebP"
# 50 megapixels: a 48 MP phone photo (8064x6048) passes, a 218 KB decompression bomb of
# 15000x15000 does not. Decoding takes about 30 bytes per pixel at the peak (RGBA, float).
DEFAULT_MAX_PIXELS = 50_000_000
HEADER_BYTES = 64 * 1024  # read first; a JPEG whose frame header lies further is read whole
BMP_INFO_HEADERS = (40, 52, 56, 64, 108, 124)  # BITMAPINFOHEADER and its successors
JPEG_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-SOF15


class ImageTooLarge(ValueError):
    """An image declares more pixels than the limit."""


class NotAnImage(ValueError):
    """Bytes that are not an image of the FORMATS (or whose header is cut short)."""


def _jpeg(data):
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in JPEG_FRAME_MARKERS:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def _webp(data):
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def declared_size(data):
    """(width, height) that image bytes `data` (at least their first HEADER_BYTES) declare,
    or None if they are not a JPEG, PNG, GIF, BMP or WebP image with a complete header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" and len(data) >= 24 else None
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None
    if data[:2] == b"BM" and len(data) >= 26:
        info = int.from_bytes(data[14:18], "little")
        if info == 12:  # BITMAPCOREHEADER: 16-bit sizes
            return struct.unpack("<HH", data[18:22])
        if info in BMP_INFO_HEADERS:
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)  # a negative height is a top-down bitmap
        return None
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    return None


def check_image(data, max_pixels, what="the image", limit_name="the pixel limit"):
    """Raise NotAnImage or ImageTooLarge for image bytes `data` that cannot be decoded safely;
    `what` names them and `limit_name` the setting that raises the limit in the messages."""
    size = declared_size(data)
    if size is None:
        raise NotAnImage(f"{what} is not a readable image: its bytes are not a {FORMATS} file "
                         "(or are cut short)")
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(f"{what} declares {width}x{height} = {width * height:,} pixels, more "
                            f"than {limit_name}={max_pixels:,}; resize it, or raise the limit")
    return size


def file_declared_size(path):
    """declared_size of image file `path`, reading no more of it than its header needs: the
    first HEADER_BYTES, the whole file for a JPEG whose EXIF or ICC segments are longer."""
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
        size = declared_size(head)
        if size is None and head[:3] == b"\xff\xd8\xff" and len(head) == HEADER_BYTES:
            size = declared_size(head + f.read())
    return size
