#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# png_colours.py PNG [RRGGBB...]: decodes an 8-bit RGB(A) PNG with the
# standard library only, prints its number of distinct colours and how
# many pixels have each given colour; exits 0 when there are more than 16
# colours and more than 20 pixels of each given one (a rendered chart, not
# a blank page).
import struct
import sys
import zlib


def pixels(path):
    d = open(path, 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    i, idat, hdr = 8, b'', None
    while i < len(d):
        n, t = struct.unpack('>I4s', d[i:i + 8])
        c = d[i + 8:i + 8 + n]
        if t == b'IHDR':
            hdr = struct.unpack('>IIBBBBB', c)
        elif t == b'IDAT':
            idat += c
        i += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, hdr
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, out, p = bytearray(stride), [], 0
    for y in range(h):
        f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pr) & 255
        out.append(bytes(line))
        prev = line
    return w, h, bpp, out
w, h, bpp, rows = pixels(sys.argv[1])
cols = {}
for r in rows:
    for x in range(0, len(r), bpp):
        k = r[x:x + 3]
        cols[k] = cols.get(k, 0) + 1
want = [bytes.fromhex(c) for c in sys.argv[2:]]
print('%dx%d, %d colours; %s' % (w, h, len(cols), ' '.join('%s:%d' % (c.hex(), cols.get(c, 0)) for c in want)))
sys.exit(0 if len(cols) > 16 and all(cols.get(c, 0) > 20 for c in want) else 1)
