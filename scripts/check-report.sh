#!/usr/bin/env bash
# Render a cnibench report.html with headless Chromium (offline, file://) and fail
# unless the screenshot shows a page: enough non-white pixels, and coloured ones
# (the charts' lines and bars). A blank or text-only page fails.
#
# Usage: scripts/check-report.sh RUN_DIR|REPORT.html [SCREENSHOT.png]
# The screenshot defaults to report-screenshot.png next to the report.
# Needs: chromium (Debian: apt-get install -y chromium), python3 (standard library only).
set -euo pipefail

usage() {
    echo "usage: $0 RUN_DIR|REPORT.html [SCREENSHOT.png]" >&2
    exit 64
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    usage
fi

html=$1
[ -d "$html" ] && html=$html/report.html
if [ ! -f "$html" ]; then
    echo "check-report: $html: no such file" >&2
    exit 1
fi
html=$(realpath "$html")
png=${2:-$(dirname "$html")/report-screenshot.png}

browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then
        browser=$b
        break
    fi
done
if [ -z "$browser" ]; then
    echo "check-report: no chromium found (Debian: apt-get install -y chromium)" >&2
    exit 69
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$png"
# No network is needed or wanted: the report is one self-contained file.
if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --window-size=1280,2400 --screenshot="$png" "file://$html" \
    >"$profile/browser.log" 2>&1; then
    echo "check-report: $browser failed:" >&2
    tail -n 20 "$profile/browser.log" >&2
    exit 1
fi
if [ ! -s "$png" ]; then
    echo "check-report: no screenshot written" >&2
    tail -n 20 "$profile/browser.log" >&2
    exit 1
fi

python3 - "$png" <<'EOF'
"""Decode the PNG (8-bit RGB/RGBA, standard library only) and judge the page."""
import struct
import sys
import zlib

path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit(f"check-report: {path}: not a PNG")
pos, idat, width, height, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    (length,) = struct.unpack(">I", data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
    pos += 12 + length
    if kind == b"IHDR":
        width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        if depth != 8 or ctype not in (2, 6) or interlace:
            sys.exit(f"check-report: unsupported PNG (depth {depth}, colour type {ctype})")
    elif kind == b"IDAT":
        idat += body
bpp = 4 if ctype == 6 else 3
raw = zlib.decompress(idat)
stride = width * bpp
prev = bytearray(stride)
white = coloured = 0
for y in range(height):
    off = y * (stride + 1)
    ftype, line = raw[off], bytearray(raw[off + 1:off + 1 + stride])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ftype == 1:
            line[i] = (line[i] + a) & 0xFF
        elif ftype == 2:
            line[i] = (line[i] + b) & 0xFF
        elif ftype == 3:
            line[i] = (line[i] + (a + b) // 2) & 0xFF
        elif ftype == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pred) & 0xFF
    for x in range(0, stride, bpp):
        r, g, bl = line[x], line[x + 1], line[x + 2]
        if r >= 250 and g >= 250 and bl >= 250:
            white += 1
        elif max(r, g, bl) - min(r, g, bl) > 60:
            coloured += 1
    prev = line
total = width * height
ink = total - white
print(f"check-report: {path}: {width}x{height}, {ink} non-white pixels "
      f"({100.0 * ink / total:.2f}%), {coloured} coloured")
if ink < total * 0.005:
    sys.exit("check-report: FAIL: the page is blank")
if coloured < 500:
    sys.exit("check-report: FAIL: no charts drawn (no coloured pixels)")
print("check-report: ok")
EOF
