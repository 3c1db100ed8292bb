"""Colour profiles and colour differences for the tests, made here from their published numbers
so that the tests need no profile files: an ICC v4 matrix/TRC profile writer, Display P3 and
Adobe RGB (1998), CIE XYZ → L*a*b* and CIEDE2000 (Sharma, Wu & Dalal 2005)."""

from __future__ import annotations

import struct

import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
D65_XY = (0.3127, 0.3290)
# Display P3 (SMPTE EG 432-1 primaries, D65, the sRGB curve) and Adobe RGB (1998) (gamma 563/256).
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
ADOBE_PRIMARIES = ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060))
SRGB_PARAMS = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


def rgb_to_xyz_d50(primaries: tuple[tuple[float, float], ...], white: tuple[float, float] = D65_XY) -> np.ndarray:
    """RGB (linear) → XYZ relative to D50, Bradford-adapted from ``white`` (ICC.1 Annex E)."""
    def xyz(x: float, y: float) -> np.ndarray:
        return np.array([x / y, 1.0, (1 - x - y) / y])

    columns = np.stack([xyz(*p) for p in primaries], axis=1)
    native = columns * np.linalg.solve(columns, xyz(*white))
    cone = np.diag((_BRADFORD @ D50) / (_BRADFORD @ xyz(*white)))
    return np.linalg.inv(_BRADFORD) @ cone @ _BRADFORD @ native


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _mluc(text: str) -> bytes:
    body = text.encode("utf-16-be")
    return b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(body), 28) + body


def matrix_profile(description: str, primaries: tuple[tuple[float, float], ...], curve: bytes) -> bytes:
    """An ICC v4.3 display profile: colorants from ``primaries`` (D65 white), one tone curve."""
    matrix = rgb_to_xyz_d50(primaries)
    tags = [(name, b"XYZ \0\0\0\0" + b"".join(map(_s15, matrix[:, i]))) for i, name in
            enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
    tags += [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    return _profile(description, b"RGB ", tags)


def grey_profile(curve: bytes) -> bytes:
    """An ICC v4.3 grey display profile with tone curve ``curve``."""
    return _profile("Grey (impasto tests)", b"GRAY", [(b"kTRC", curve)])


def _profile(description: str, space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    tags = [(b"desc", _mluc(description)), (b"cprt", _mluc("No copyright, use freely")),
            (b"wtpt", b"XYZ \0\0\0\0" + b"".join(map(_s15, D50))), *tags]
    table, data, offset = b"", b"", 128 + 4 + 12 * len(tags)
    for name, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += struct.pack(">4sII", name, offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s12s4s4sI4s4s8sI", size, b"none", 0x04300000, b"mntr", space, b"XYZ ",
                         bytes(12), b"acsp", b"APPL", 0, b"none", b"none", bytes(8), 0)
    header += b"".join(map(_s15, D50)) + b"none" + bytes(16) + bytes(28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def para(function: int, *params: float) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", function, 0) + b"".join(map(_s15, params))


def display_p3() -> bytes:
    return matrix_profile("Display P3 (impasto tests)", P3_PRIMARIES, para(3, *SRGB_PARAMS))


def adobe_rgb() -> bytes:
    return matrix_profile("Adobe RGB (1998) compatible (impasto tests)", ADOBE_PRIMARIES, para(0, 563 / 256))


def srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def p3_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Display P3 values (..., 3) in [0, 1] as CIE L*a*b* (D50)."""
    xyz = srgb_decode(np.asarray(rgb, np.float64)) @ rgb_to_xyz_d50(P3_PRIMARIES).T
    f = np.cbrt(xyz / D50)
    f = np.where(xyz / D50 > (6 / 29) ** 3, f, xyz / D50 / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """ΔE00 between L*a*b* colours (..., 3) (Sharma, Wu & Dalal 2005, equations 1–22)."""
    l1, a1, b1 = np.moveaxis(np.asarray(lab1, np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(np.asarray(lab2, np.float64), -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dlp, dcp = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(c1p * c2p == 0, 0.0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    dhp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lp_mean, cp_mean = (l1 + l2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    hp_mean = np.where(c1p * c2p == 0, h_sum,
                       np.where(np.abs(h1p - h2p) <= 180, h_sum / 2,
                                np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(hp_mean - 30)) + 0.24 * np.cos(np.radians(2 * hp_mean))
         + 0.32 * np.cos(np.radians(3 * hp_mean + 6)) - 0.20 * np.cos(np.radians(4 * hp_mean - 63)))
    d_theta = 30 * np.exp(-(((hp_mean - 275) / 25) ** 2))
    r_c = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    s_l = 1 + 0.015 * (lp_mean - 50) ** 2 / np.sqrt(20 + (lp_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * cp_mean, 1 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c
    return np.sqrt((dlp / s_l) ** 2 + (dcp / s_c) ** 2 + (dhp / s_h) ** 2 + r_t * (dcp / s_c) * (dhp / s_h))
