"""Writing flat HEALPix FITS maps block by block (gzipped), so that a test can make an NSIDE-4096 map
(201 M pixels) without ever holding it: the header from astropy, the rows written as they are made."""

from __future__ import annotations

import gzip

import numpy as np
from astropy.io import fits


def write_flat(path, nside: int, ordering: str, block, columns=("PROB",), block_pixels: int = 1 << 20) -> None:
    """``block(start, stop)`` → dict column → float values of pixels start..stop (in ``ordering``'s
    numbering). Columns are written as 32-bit floats (format E), one value per row, as many real maps are."""
    npix = 12 * nside * nside
    cols = fits.ColDefs([fits.Column(name=c, format="E") for c in columns])
    hdu = fits.BinTableHDU.from_columns(cols, nrows=0)
    hdr = hdu.header
    hdr["NAXIS2"] = npix
    hdr["PIXTYPE"], hdr["ORDERING"], hdr["NSIDE"], hdr["INDXSCHM"] = "HEALPIX", ordering, nside, "IMPLICIT"
    row = np.dtype([(c, ">f4") for c in columns])
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(fits.PrimaryHDU().header.tostring().encode())
        out.write(hdr.tostring().encode())
        for start in range(0, npix, block_pixels):
            stop = min(npix, start + block_pixels)
            values = block(start, stop)
            rec = np.empty(stop - start, dtype=row)
            for c in columns:
                rec[c] = values[c]
            out.write(rec.tobytes())
        written = npix * row.itemsize
        out.write(b"\0" * (-written % 2880))
