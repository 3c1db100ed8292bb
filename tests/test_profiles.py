"""Matrix/TRC ICC profiles in floating point agree with LittleCMS, invert exactly, and refuse
bytes that are not a profile."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from colour_profiles import adobe_rgb, ciede2000, display_p3, matrix_profile, p3_to_lab, para
from impasto import profiles


def _littlecms(rgb: np.ndarray, source: bytes | None, target: bytes | None) -> np.ndarray:
    """LittleCMS's conversion of 8-bit RGB values (None: its sRGB)."""
    def open_(data: bytes | None) -> ImageCms.ImageCmsProfile:
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB") if data is None else io.BytesIO(data))

    transform = ImageCms.buildTransform(open_(source), open_(target), "RGB", "RGB")
    return np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), transform)).astype(np.float64)


@pytest.mark.parametrize("make", [display_p3, adobe_rgb])
def test_conversions_agree_with_littlecms_to_its_rounding(make) -> None:
    data = make()
    profile = profiles.parse(data)
    assert profile is not None and profiles.header(data) == ("mntr", "RGB")
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    rgb[0, :3] = [[0, 255, 0], [255, 0, 0], [0, 0, 255]]
    ours = np.clip(profiles.convert(rgb / 255.0, profile, profiles.SRGB), 0, 1) * 255
    assert np.abs(ours - _littlecms(rgb, data, None)).max() < 1.0
    back = np.clip(profiles.convert(rgb / 255.0, profiles.SRGB, profile), 0, 1) * 255
    assert np.abs(back - _littlecms(rgb, None, data)).max() < 1.0


def test_colours_outside_srgb_survive_a_round_trip_unclipped() -> None:
    p3 = profiles.parse(display_p3())
    green = np.array([0.0, 1.0, 0.0])
    in_srgb = profiles.convert(green, p3, profiles.SRGB)
    assert in_srgb[0] < -0.3 and in_srgb[2] < -0.1  # outside sRGB: negative, not clipped
    back = profiles.convert(in_srgb, profiles.SRGB, p3)
    assert ciede2000(p3_to_lab(back), p3_to_lab(green)) < 1e-4


@pytest.mark.parametrize(
    "curve",
    [para(0, 2.2), para(1, 2.0, 0.9, 0.1), para(2, 2.4, 0.95, 0.05, 0.01),
     para(3, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045), para(4, 2.2, 1.0, 0.0, 0.04, 0.05, 0.001, 0.000366),
     b"curv\0\0\0\0" + struct.pack(">IH", 1, 563) + b"\0\0",
     b"curv\0\0\0\0" + struct.pack(">I", 256)
     + (np.linspace(0, 1, 256) ** 1.8 * 65535).round().astype(">u2").tobytes()],
)
def test_every_kind_of_tone_curve_inverts(curve: bytes) -> None:
    profile = profiles.parse(matrix_profile("test", ((0.64, 0.33), (0.3, 0.6), (0.15, 0.06)), curve))
    x = np.linspace(0.0, 1.0, 1001)
    for c in profile.curves:
        assert np.abs(c.encode(c.linear(x)) - x).max() < 2e-4
        assert np.all(np.diff(c.linear(x)) >= 0)
    # Mirrored below zero, as extended sRGB.
    np.testing.assert_allclose(profile.curves[0].linear(-x[1:]), -profile.curves[0].linear(x[1:]))


def test_srgb_written_by_littlecms_is_recognised_as_srgb() -> None:
    ours = profiles.parse(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert ours is not None and profiles.same(ours, profiles.SRGB)
    assert not profiles.same(profiles.parse(display_p3()), profiles.SRGB)


def test_profiles_of_other_kinds_are_left_to_littlecms() -> None:
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert profiles.parse(lab) is None


@pytest.mark.parametrize(
    ("data", "phrase"),
    [(b"not a profile at all" * 10, "not an ICC profile"), (display_p3()[:200], "truncated"),
     (display_p3()[:136] + b"\xff\xff\0\0" + display_p3()[140:], "lies outside the profile")],
)
def test_bytes_that_are_not_a_profile_are_refused(data: bytes, phrase: str) -> None:
    with pytest.raises(profiles.ProfileError, match=phrase):
        profiles.parse(data)
