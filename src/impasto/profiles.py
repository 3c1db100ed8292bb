"""ICC colour profiles of the matrix/TRC kind, read and applied in floating point.

Most photographs that carry a profile carry one of this kind: sRGB, Display P3, Adobe RGB (1998),
ProPhoto RGB, or a grey one. Each is three tone curves (TRC) and a 3 x 3 matrix to the ICC's
connection space (CIE XYZ, D50), so a conversion between two of them is exact arithmetic: 16-bit
data keeps its precision, and colours outside the target's gamut come out as values outside
[0, 1] instead of being clipped on the way (``convert`` leaves clipping to the caller). Profiles of
other kinds (lookup tables, CMYK, Lab) go through LittleCMS, in ``impasto.images``; this module
only says that they are not its kind. No Pillow here: bytes in, numpy arrays out.

References: ICC.1:2022 (profile format, §10.6 curveType, §10.18 parametricCurveType, §10.31
XYZType); IEC 61966-2-1 (sRGB).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# The ICC's connection-space white (D50) and the Bradford cone response matrix (ICC.1 Annex E).
D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# Tags that make LittleCMS prefer a lookup table over the matrix and curves.
_LUT_TAGS = (b"A2B0", b"A2B1", b"A2B2", b"B2A0", b"B2A1", b"B2A2", b"D2B0", b"B2D0")
_PARA_COUNTS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}
#: The output profiles named rather than given as a file (``--output-profile``): the photo's own, sRGB.
OUTPUT_PROFILES = ("source", "srgb")


class ProfileError(ValueError):
    """A profile whose bytes cannot be read; the message says what is wrong, in a few words."""


@dataclass(frozen=True)
class Curve:
    """A tone curve, encoded value → linear light, as ICC parametric function type 4,
    Y = (aX + b)^g + e for X >= d, else cX + f (the other types are special cases), or as a
    table sampled at equal steps of X. Negative values are mirrored (Y(-X) = -Y(X)), as extended
    sRGB does, so that colours outside a gamut survive a round trip."""

    params: tuple[float, ...] = (1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    table: tuple[float, ...] | None = None

    def linear(self, x: np.ndarray) -> np.ndarray:
        return _mirrored(self._linear, x)

    def encode(self, y: np.ndarray) -> np.ndarray:
        """The inverse of ``linear``."""
        return _mirrored(self._encode, y)

    def _linear(self, x: np.ndarray) -> np.ndarray:
        if self.table is not None:
            table = np.asarray(self.table)
            return np.interp(x, np.linspace(0.0, 1.0, len(table)), table).astype(x.dtype)
        g, a, b, c, d, e, f = self.params
        power = np.power(np.maximum(a * x + b, 0.0), g) + e
        return power if d <= 0 else np.where(x >= d, power, c * x + f)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        if self.table is not None:
            table = np.maximum.accumulate(np.asarray(self.table))
            return np.interp(y, table, np.linspace(0.0, 1.0, len(table))).astype(y.dtype)
        g, a, b, c, d, e, f = self.params
        knee = np.power(max(a * d + b, 0.0), g) + e
        power = (np.power(np.maximum(y - e, 0.0), 1.0 / g) - b) / a
        if knee <= 0:
            return power
        return np.where(y >= knee, power, (y - f) / c if c else np.full_like(y, d))


def _mirrored(function: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``function`` extended to negative values by symmetry, f(-x) = -f(x)."""
    if not (x < 0).any():
        return function(x)
    return np.sign(x) * function(np.abs(x))


#: The sRGB tone curve (IEC 61966-2-1) as ICC parametric function type 3.
SRGB_CURVE = Curve((2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045, 0.0, 0.0))


@dataclass(frozen=True)
class MatrixProfile:
    """Three tone curves and the matrix from linear RGB to XYZ (D50), by columns R, G, B."""

    matrix: tuple[tuple[float, float, float], ...]
    curves: tuple[Curve, Curve, Curve]

    def to_xyz(self, rgb: np.ndarray) -> np.ndarray:
        """Encoded RGB values (..., 3) as XYZ relative to D50."""
        return self.linear(rgb) @ np.asarray(self.matrix, rgb.dtype).T

    def from_xyz(self, xyz: np.ndarray) -> np.ndarray:
        return self.encode(xyz @ np.linalg.inv(np.asarray(self.matrix)).T.astype(xyz.dtype))

    def linear(self, rgb: np.ndarray) -> np.ndarray:
        """Encoded RGB values (..., 3) as linear light."""
        if self.curves[0] == self.curves[1] == self.curves[2]:
            return self.curves[0].linear(rgb)
        return np.stack([c.linear(rgb[..., i]) for i, c in enumerate(self.curves)], axis=-1)

    def encode(self, linear: np.ndarray) -> np.ndarray:
        if self.curves[0] == self.curves[1] == self.curves[2]:
            return self.curves[0].encode(linear)
        return np.stack([c.encode(linear[..., i]) for i, c in enumerate(self.curves)], axis=-1)


def colorants(primaries: tuple[tuple[float, float], ...], white: tuple[float, float]) -> np.ndarray:
    """The RGB → XYZ (D50) matrix of RGB primaries and a white given as CIE xy chromaticities,
    adapted to D50 by the Bradford transform, as ICC display profiles state their colorants."""
    def xyz(x: float, y: float) -> np.ndarray:
        return np.array([x / y, 1.0, (1.0 - x - y) / y])

    columns = np.stack([xyz(*p) for p in primaries], axis=1)
    white_xyz = xyz(*white)
    native = columns * np.linalg.solve(columns, white_xyz)
    scale = np.diag((_BRADFORD @ D50) / (_BRADFORD @ white_xyz))
    return np.linalg.inv(_BRADFORD) @ scale @ _BRADFORD @ native


#: sRGB: ITU-R BT.709 primaries, D65 white, the sRGB curve.
SRGB = MatrixProfile(
    tuple(map(tuple, colorants(((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), (0.3127, 0.3290)))),
    (SRGB_CURVE,) * 3,
)


def convert(rgb: np.ndarray, source: MatrixProfile, target: MatrixProfile) -> np.ndarray:
    """Encoded RGB values (..., 3) of ``source`` as ``target``'s (relative colorimetric: white
    to white). Not clipped: a colour outside ``target``'s gamut gives values outside [0, 1]."""
    if same(source, target):
        return rgb
    combined = np.linalg.inv(np.asarray(target.matrix)) @ np.asarray(source.matrix)
    return target.encode(source.linear(rgb) @ combined.T.astype(rgb.dtype))


def same(a: MatrixProfile, b: MatrixProfile, tolerance: float = 2e-4) -> bool:
    """Whether two profiles describe the same colours, to well under a 16-bit step of difference
    in XYZ (profiles round their numbers differently: sRGB written by one program and by another)."""
    if a == b:
        return True
    if not np.allclose(a.matrix, b.matrix, atol=tolerance):
        return False
    x = np.linspace(0.0, 1.0, 257)
    return all(np.allclose(ca.linear(x), cb.linear(x), atol=tolerance) for ca, cb in zip(a.curves, b.curves,
                                                                                          strict=True))


def header(data: bytes) -> tuple[str, str]:
    """The profile's class (``mntr``, ``scnr``, ``prtr``, ``spac``, …) and colour space (``RGB``,
    ``GRAY``, ``CMYK``, ``Lab``, …); ProfileError when the bytes are not an ICC profile."""
    if len(data) < 132 or data[36:40] != b"acsp":
        raise ProfileError("not an ICC profile")
    size = struct.unpack(">I", data[:4])[0]
    if size > len(data):
        raise ProfileError(f"truncated: {len(data)} of its {size} bytes")
    return data[12:16].decode("latin-1").strip(), data[16:20].decode("latin-1").strip()


@lru_cache(maxsize=32)
def parse(data: bytes) -> MatrixProfile | None:
    """The matrix/TRC profile ``data`` holds (an RGB one, or a grey one as sRGB's primaries with
    its grey curve, the same neutral colours), or None for a profile of another kind (lookup
    tables, CMYK, Lab), which LittleCMS converts. ProfileError for bytes that cannot be a profile."""
    _, space = header(data)
    tags = _tag_table(data)
    if any(t in tags for t in _LUT_TAGS):
        return None
    if space == "GRAY" and b"kTRC" in tags:
        grey = _curve(data, tags[b"kTRC"])
        return MatrixProfile(SRGB.matrix, (grey,) * 3)
    needed = (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC")
    if space != "RGB" or not all(t in tags for t in needed):
        return None
    columns = [_xyz(data, tags[t]) for t in needed[:3]]
    matrix = tuple(tuple(float(columns[j][i]) for j in range(3)) for i in range(3))
    if abs(np.linalg.det(np.asarray(matrix))) < 1e-6:
        raise ProfileError("its colorants are not independent")
    curves = (_curve(data, tags[b"rTRC"]), _curve(data, tags[b"gTRC"]), _curve(data, tags[b"bTRC"]))
    return MatrixProfile(matrix, curves)


def _tag_table(data: bytes) -> dict[bytes, tuple[int, int]]:
    count = struct.unpack(">I", data[128:132])[0]
    if 132 + 12 * count > len(data):
        raise ProfileError(f"its tag table of {count} tags runs past the end")
    tags = {}
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", data[132 + 12 * i:144 + 12 * i])
        if offset + size > len(data) or size < 8:
            raise ProfileError(f"tag {sig.decode('latin-1')!r} lies outside the profile")
        tags[sig] = (offset, size)
    return tags


def _xyz(data: bytes, where: tuple[int, int]) -> np.ndarray:
    offset, size = where
    if data[offset:offset + 4] != b"XYZ " or size < 20:
        raise ProfileError("a colorant tag is not of XYZ type")
    return np.array(struct.unpack(">3i", data[offset + 8:offset + 20])) / 65536.0


def _curve(data: bytes, where: tuple[int, int]) -> Curve:
    offset, size = where
    kind, body = data[offset:offset + 4], data[offset + 8:offset + size]
    if kind == b"curv":
        (count,) = struct.unpack(">I", body[:4])
        if len(body) < 4 + 2 * count:
            raise ProfileError("a tone curve is truncated")
        if count == 0:
            return Curve()
        values = struct.unpack(f">{count}H", body[4:4 + 2 * count])
        if count == 1:
            return Curve((values[0] / 256.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0))
        return Curve(table=tuple(v / 65535.0 for v in values))
    if kind == b"para":
        (function,) = struct.unpack(">H", body[:2])
        if function not in _PARA_COUNTS or len(body) < 4 + 4 * _PARA_COUNTS[function]:
            raise ProfileError(f"parametric curve of unknown type {function}")
        p = [v / 65536.0 for v in struct.unpack(f">{_PARA_COUNTS[function]}i", body[4:4 + 4 * _PARA_COUNTS[function]])]
        return Curve(_type4(function, p))
    raise ProfileError(f"a tone curve of unknown type {kind.decode('latin-1')!r}")


def _type4(function: int, p: list[float]) -> tuple[float, ...]:
    """Parameters (g, a, b, c, d, e, f) of function type 4 equal to ``function`` with ``p``."""
    if function == 0:
        return (p[0], 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    g, a, b = p[:3]
    if a == 0:
        raise ProfileError("a parametric curve with a = 0")
    if function == 1:
        return (g, a, b, 0.0, -b / a, 0.0, 0.0)
    if function == 2:
        return (g, a, b, 0.0, -b / a, p[3], p[3])
    if function == 3:
        return (g, a, b, p[3], p[4], 0.0, 0.0)
    return (g, a, b, p[3], p[4], p[5], p[6])
