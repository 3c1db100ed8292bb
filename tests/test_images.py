from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile, ImageOps

from colour_profiles import adobe_rgb, display_p3, grey_profile, para
from conftest import CORPORA
from impasto.errors import InputError
from impasto.images import (
    PhotoInfo,
    check_output_path,
    from_pil,
    load_image,
    load_photo,
    output_profile,
    read_photo,
    resize_long_side,
    resize_to,
    save_image,
    save_photo,
    to_pil,
    to_srgb,
)


def _noise(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _fails(call, label: str, phrase: str) -> str:
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{label}: "), message
    assert phrase in message, message
    assert "\n" not in message
    return message


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares a size but holds no pixel data: decoding it could only fail."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b""))
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    calls = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append(self))
    yield
    assert not calls, "the image was decoded"


# --- bad inputs ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jpg"
    _fails(lambda: load_image(path), str(path), "file not found")


def test_directory(tmp_path):
    _fails(lambda: load_image(tmp_path), str(tmp_path), "is a directory, not an image")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    _fails(lambda: load_image(path), str(path), "empty file")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    _fails(lambda: load_image(path), str(path), "not an image file (or an unsupported format)")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    _noise().save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _fails(lambda: load_image(path), str(path), "truncated or corrupt")


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    _noise().save(path)

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", deny)
    _fails(lambda: load_image(path), str(path), "permission denied")


def test_too_small(tmp_path):
    path = tmp_path / "tiny.png"
    _noise(20, 40).save(path)
    _fails(lambda: load_image(path), str(path), "image is 20x40; both sides must be at least 32 px")


def test_max_pixels_from_header(tmp_path, no_decoding):
    path = _png_header(tmp_path / "big.png", 2000, 1000)
    _fails(lambda: load_image(path, max_pixels=1_000_000), str(path), "image has 2000000 pixels, more than the limit")


def test_max_pixels_limit(tmp_path):
    path = tmp_path / "photo.png"
    _noise(96, 64).save(path)
    assert load_image(path, max_pixels=96 * 64).shape == (1, 3, 64, 96)
    _fails(lambda: load_image(path, max_pixels=96 * 64 - 1), str(path), "(--max-pixels)")


@pytest.mark.parametrize("side", [9500, 14000])  # above Pillow's warning and its error threshold
def test_decompression_bomb(tmp_path, no_decoding, side):
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    path = _png_header(tmp_path / "bomb.png", side, side)
    _fails(lambda: load_image(path), str(path), f"{side * side} pixels")
    assert limit == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == filters


def test_bomb_made_by_pillow(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (14000, 14000)).save(path)
    assert path.stat().st_size < 100_000
    _fails(lambda: load_image(path), str(path), "too large")


def test_in_memory_labels():
    _fails(lambda: load_image(_noise(20, 20)), "image", "image is 20x20")
    _fails(lambda: load_image(np.zeros((20, 64, 3), np.uint8)), "array", "image is 64x20")
    _fails(lambda: load_image(np.zeros((64, 64), np.uint8), max_pixels=100), "array", "more than the limit of 100")


def test_bytes_with_a_label_and_formats(tmp_path, no_decoding):
    # The bytes of an upload: checked as a file is, with messages naming the given label.
    bomb = _png_header(tmp_path / "bomb.png", 14000, 14000).read_bytes()
    _fails(lambda: load_image(bomb, label="style"), "style", "too large to decode safely")
    big = _png_header(tmp_path / "big.png", 2000, 1000).read_bytes()
    _fails(lambda: load_image(big, max_pixels=1_000_000, label="content"), "content", "more than the limit")
    _fails(lambda: load_image(b"", label="content"), "content", "empty file")
    _fails(lambda: load_image(b"not an image"), "image", "not an image file")


def test_bytes_decode_and_formats_limit_the_decoders(tmp_path):
    image = _noise(64, 48)
    image.save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    assert torch.equal(load_image(data, formats=("PNG",)), load_image(tmp_path / "a.png"))
    _fails(lambda: load_image(data, label="upload", formats=("JPEG",)), "upload", "not an image file")
    _fails(lambda: load_image(tmp_path / "a.png", label="photo", formats=("JPEG",)), "photo", "not an image file")


@pytest.mark.parametrize(
    ("array", "phrase"),
    [
        (np.full((64, 64, 3), 1.5, np.float32), "float values must lie in [0, 1]"),
        (np.full((64, 64), np.nan), "float values must lie in [0, 1]"),
        (np.zeros((64, 64, 2), np.uint8), "shape (64, 64, 2)"),
        (np.zeros((1, 64, 64, 3), np.uint8), "shape"),
        (np.zeros((64, 64, 3), np.int64), "unsupported dtype int64"),
    ],
)
def test_bad_arrays(array, phrase):
    _fails(lambda: load_image(array), "array", phrase)


# --- modes and orientation ----------------------------------------------------------------------


def test_exif_orientation(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned 90 degrees clockwise
    _noise(96, 64).save(path, exif=exif)
    assert load_image(path).shape == (1, 3, 96, 64)


def test_rgb_is_float32_in_range(tmp_path):
    path = tmp_path / "rgb.png"
    _noise().save(path)
    image = load_image(str(path))
    assert image.dtype == torch.float32 and image.shape == (1, 3, 64, 96)
    assert image.min() >= 0.0 and image.max() <= 1.0


@pytest.mark.parametrize(("mode", "value", "expected"), [("L", 100, 100 / 255), ("1", 1, 1.0), ("1", 0, 0.0)])
def test_grey_replicated(tmp_path, mode, value, expected):
    path = tmp_path / "grey.png"
    Image.new(mode, (64, 48), value).save(path)
    image = load_image(path)
    assert image.shape == (1, 3, 48, 64)
    torch.testing.assert_close(image, torch.full_like(image, expected))


def test_rgba_composited_on_white(tmp_path):
    path = tmp_path / "alpha.png"
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    img.putpixel((1, 0), (0, 0, 0, 255))
    img.putpixel((2, 0), (255, 0, 0, 51))
    img.save(path)
    image = load_image(path)[0, :, 0]
    torch.testing.assert_close(image[:, 0], torch.ones(3))
    torch.testing.assert_close(image[:, 1], torch.zeros(3))
    torch.testing.assert_close(image[:, 2], torch.tensor([1.0, 0.8, 0.8]))


def test_rgba_array_composited_on_white():
    array = np.zeros((64, 64, 4), np.uint8)
    torch.testing.assert_close(load_image(array), torch.ones(1, 3, 64, 64))


@pytest.mark.parametrize("transparent", [False, True])
def test_palette(tmp_path, transparent):
    path = tmp_path / "palette.png"
    img = Image.new("P", (64, 64), 0)
    img.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.save(path, **({"transparency": 0} if transparent else {}))
    image = load_image(path)[0]
    background = [1.0, 1.0, 1.0] if transparent else [10 / 255, 20 / 255, 30 / 255]
    torch.testing.assert_close(image[:, 5, 5], torch.tensor(background))
    torch.testing.assert_close(image[:, 0, 0], torch.tensor([200 / 255, 100 / 255, 0.0]))


def test_cmyk(tmp_path):
    path = tmp_path / "print.tif"
    Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(path)
    torch.testing.assert_close(load_image(path)[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_16_bit_grey_keeps_precision(tmp_path):
    path = tmp_path / "deep.png"
    data = np.full((64, 64), 1000, np.uint16)
    data[0, 0] = 65535
    Image.fromarray(data).save(path)
    image = load_image(path)
    assert abs(image[0, 0, 5, 5].item() - 1000 / 65535) < 1e-4
    assert image[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_16_bit_array():
    image = load_image(np.full((64, 64, 3), 1000, np.uint16))
    torch.testing.assert_close(image, torch.full_like(image, 1000 / 65535))


def test_int_and_float_modes():
    small = Image.fromarray(np.full((64, 64), 200, np.int32))
    assert small.mode == "I"
    torch.testing.assert_close(from_pil(small), torch.full((1, 3, 64, 64), 200 / 255))
    wide = Image.fromarray(np.full((64, 64), 30000, np.int32))
    torch.testing.assert_close(from_pil(wide), torch.full((1, 3, 64, 64), 30000 / 65535))
    unit = Image.fromarray(np.full((64, 64), 0.25, np.float32))
    assert unit.mode == "F"
    torch.testing.assert_close(from_pil(unit), torch.full((1, 3, 64, 64), 0.25))
    scaled = Image.fromarray(np.full((64, 64), 51.0, np.float32))
    torch.testing.assert_close(from_pil(scaled), torch.full((1, 3, 64, 64), 0.2))


def test_float_array():
    array = np.full((64, 64, 3), 0.5, np.float64)
    torch.testing.assert_close(load_image(array), torch.full((1, 3, 64, 64), 0.5))


# --- resizing and conversion --------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width", "expected"), [(64, 96, (32, 48)), (96, 64, (48, 32)), (40, 40, (48, 48))])
def test_resize_long_side(height, width, expected):
    image = torch.rand(1, 3, height, width)
    resized = resize_long_side(image, 48)
    assert resized.shape[-2:] == expected
    assert resized.min() >= 0.0 and resized.max() <= 1.0


def test_resize_keeps_thin_side_at_least_one():
    assert resize_long_side(torch.rand(1, 3, 2, 400), 100).shape[-2:] == (1, 100)


def test_resize_noop_returns_input():
    image = torch.rand(1, 3, 64, 96)
    assert resize_long_side(image, 96) is image
    assert resize_to(image, 64, 96) is image


def test_resize_to_clamps():
    checker = (torch.arange(64 * 64).reshape(1, 1, 64, 64) % 2).float().expand(1, 3, 64, 64)
    resized = resize_to(checker, 50, 70)
    assert resized.shape == (1, 3, 50, 70)
    assert resized.min() >= 0.0 and resized.max() <= 1.0


def test_to_pil_rounds_and_clamps():
    image = torch.tensor([-0.5, 0.5, 1.5]).reshape(3, 1, 1).expand(3, 4, 5)
    img = to_pil(image)
    assert img.mode == "RGB" and img.size == (5, 4)
    assert img.getpixel((0, 0)) == (0, 128, 255)
    with pytest.raises(ValueError):
        to_pil(torch.rand(1, 4, 8, 8))


# --- saving -------------------------------------------------------------------------------------


def test_png_round_trip(tmp_path):
    path = tmp_path / "out.png"
    image = torch.rand(1, 3, 64, 80)
    save_image(image, path)
    assert (load_image(path) - image).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.png", "PNG"),
        ("a.jpg", "JPEG"),
        ("a.JPEG", "JPEG"),
        ("a.webp", "WEBP"),
        ("a.tif", "TIFF"),
        ("a.TIFF", "TIFF"),
    ],
)
def test_output_formats(tmp_path, name, fmt):
    path = tmp_path / name
    save_image(_noise(), path, quality=80)
    with Image.open(path) as img:
        assert img.format == fmt and img.size == (96, 64)
    assert sorted(os.listdir(tmp_path)) == [name]


def test_save_unsupported_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = _fails(lambda: save_image(torch.rand(1, 3, 8, 8), "out.xyz"), "out.xyz", "unsupported output format")
    assert message == "out.xyz: unsupported output format '.xyz' (use .png, .jpg, .webp or .tiff)"


def test_save_makes_missing_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_image(torch.rand(1, 3, 8, 8), "out/dir/x.png")
    assert os.listdir("out/dir") == ["x.png"]
    Path("afile").write_text("x")
    message = _fails(lambda: save_image(torch.rand(1, 3, 8, 8), "afile/dir/x.png"), "afile/dir/x.png", "not a folder")
    assert message == "afile/dir/x.png: afile is not a folder"


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_is_atomic(tmp_path, monkeypatch, error):
    path = tmp_path / "keep.png"
    _noise().save(path)
    before = path.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise error

    monkeypatch.setattr(Image.Image, "save", broken_save)
    if isinstance(error, OSError):
        _fails(lambda: save_image(torch.rand(1, 3, 64, 64), path), str(path), "disk full")
    else:
        with pytest.raises(KeyboardInterrupt):
            save_image(torch.rand(1, 3, 64, 64), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.png"]


def test_save_replaces_existing_file(tmp_path):
    path = tmp_path / "out.png"
    save_image(torch.zeros(1, 3, 64, 64), path)
    save_image(torch.ones(1, 3, 64, 64), path)
    assert load_image(path).min() == 1.0
    assert os.listdir(tmp_path) == ["out.png"]


# --- output path checks -------------------------------------------------------------------------


def test_check_output_path_ok(tmp_path):
    photo = tmp_path / "photo.jpg"
    _noise().save(photo)
    assert check_output_path(tmp_path / "out.PNG", [photo]) == tmp_path / "out.PNG"


def test_check_output_path_problems(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("adir.png").mkdir()
    Path("afile").write_text("x")
    _fails(lambda: check_output_path("out.xyz"), "out.xyz", "unsupported output format '.xyz'")
    _fails(lambda: check_output_path("noext"), "noext", "unsupported output format ''")
    _fails(lambda: check_output_path("adir.png"), "adir.png", "is a directory")
    _fails(lambda: check_output_path("afile/x.png"), "afile/x.png", "afile is not a folder")
    _fails(lambda: check_output_path("afile/deeper/x.png"), "afile/deeper/x.png", "afile is not a folder")
    # A missing folder is fine: the write makes it; the check makes nothing.
    assert check_output_path("out/dir/x.png") == Path("out/dir/x.png") and not Path("out").exists()


def test_check_output_path_same_as_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sub").mkdir()
    _noise().save("photo.jpg")
    phrase = "output path is the same file as an input; choose another name"
    _fails(lambda: check_output_path("photo.jpg", ["style.png", "photo.jpg"]), "photo.jpg", phrase)
    _fails(lambda: check_output_path("sub/../photo.jpg", [tmp_path / "photo.jpg"]), "sub/../photo.jpg", phrase)
    os.link("photo.jpg", "linked.jpg")
    _fails(lambda: check_output_path("linked.jpg", ["photo.jpg"]), "linked.jpg", phrase)


# --- colour profiles, 16 bits and metadata -------------------------------------------------------


def _gradient(height: int = 96, width: int = 128) -> np.ndarray:
    """A smooth 16-bit RGB gradient along both axes: thousands of distinct levels a channel."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height - 1, width - 1])[:, None, None]
    rgb = np.stack([0.2 + 0.3 * x + 0.3 * y, 0.25 + 0.5 * y, 0.3 + 0.2 * x + 0.1 * y], axis=-1)
    return (rgb * 65535).round().astype(np.uint16)


def _camera_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS R5", orientation  # Make, Model, Orientation
    own = exif.get_ifd(0x8769)
    own[0x9003] = "2024:05:01 10:00:00"  # DateTimeOriginal
    own[0xA001], own[0xA002], own[0xA003] = 1, 96, 64  # ColorSpace sRGB, PixelXDimension, PixelYDimension
    return exif


_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')


@pytest.mark.parametrize("name", ["out.png", "out.tiff"])
def test_16_bit_png_in_gives_16_bit_out_without_banding(tmp_path, name):
    cv2 = pytest.importorskip("cv2")  # an encoder and decoder of 16-bit files other than ours
    source = _gradient()
    cv2.imwrite(str(tmp_path / "deep.png"), source[:, :, ::-1])
    image, info = load_photo(tmp_path / "deep.png")
    assert info.bits == 16
    assert np.abs(image[0].permute(1, 2, 0).numpy() * 65535 - source).max() < 0.01
    save_photo(image, tmp_path / name, info)  # the bit depth follows the photo's
    written = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    assert written.dtype == np.uint16 and np.array_equal(written, source)
    region = written[16:80, 16:112, 0]
    assert len(np.unique(region)) > 256, "8-bit banding"
    assert load_photo(tmp_path / name)[1].bits == 16


def test_16_bits_survive_a_conversion_between_profiles(tmp_path):
    cv2 = pytest.importorskip("cv2")
    cv2.imwrite(str(tmp_path / "deep.png"), _gradient()[:, :, ::-1])
    image, info = load_photo(tmp_path / "deep.png")
    p3 = replace(info, icc_profile=display_p3())
    save_photo(image, tmp_path / "out.png", p3, profile="srgb")  # P3 → sRGB in floating point
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and len(np.unique(written[16:80, 16:112, 2])) > 256


def test_8_bit_photos_give_8_bit_outputs_unless_asked(tmp_path):
    path = tmp_path / "photo.png"
    _noise().save(path)
    image, info = load_photo(path)
    assert info.bits == 8
    save_photo(image, tmp_path / "a.png", info)
    save_photo(image, tmp_path / "b.png", info, bit_depth=16)
    assert load_photo(tmp_path / "a.png")[1].bits == 8 and load_photo(tmp_path / "b.png")[1].bits == 16
    torch.testing.assert_close(load_image(tmp_path / "b.png"), image)


@pytest.mark.parametrize("name", ["out.jpg", "out.webp"])
def test_16_bits_in_an_8_bit_format_is_one_line(tmp_path, name):
    image = torch.rand(1, 3, 64, 64)
    _fails(lambda: save_photo(image, tmp_path / name, PhotoInfo(), bit_depth=16), str(tmp_path / name),
           "holds 8 bits a channel; --bit-depth 16 needs .png or .tiff")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.webp", "out.tif", "deep.png", "deep.tif"])
def test_exif_xmp_and_dpi_are_carried_with_the_orientation_applied_and_reset(tmp_path, name):
    path = tmp_path / "camera.jpg"
    _noise(96, 64).save(path, exif=_camera_exif(6), xmp=_XMP, dpi=(300, 300))
    image, info = load_photo(path)
    with Image.open(path) as original:
        upright = from_pil(ImageOps.exif_transpose(original))
    torch.testing.assert_close(image, upright)  # turned as Pillow turns it: 64 wide, 96 high
    save_photo(image, tmp_path / name, info, bit_depth=16 if name.startswith("deep") else None)
    with Image.open(tmp_path / name) as out:
        out.load()
        exif, xmp = out.getexif(), out.info.get("xmp") or out.getexif().get(700) or b""
        assert out.size == (64, 96)
        assert (exif[0x010F], exif[0x0110], exif[0x0112]) == ("Canon", "EOS R5", 1)
        own = exif.get_ifd(0x8769)
        assert own[0x9003] == "2024:05:01 10:00:00"
        assert (own[0xA002], own[0xA003]) == (64, 96)  # the image's own size now
        if not name.endswith(".webp"):  # WebP has no resolution
            assert out.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert b'tiff:Orientation="1"' in (xmp if isinstance(xmp, bytes) else xmp.encode())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_turns_as_pillow_turns_it(tmp_path, orientation):
    path = tmp_path / "turned.png"
    _noise(96, 64).save(path, exif=_camera_exif(orientation))
    with Image.open(path) as original:
        torch.testing.assert_close(load_image(path), from_pil(ImageOps.exif_transpose(original)))


@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_quality_sets_the_jpeg_and_webp_compression(tmp_path, fmt):
    image = load_image(np.asarray(_noise(128, 96)))
    sizes = {}
    for quality in (30, 95):
        save_photo(image, tmp_path / f"q{quality}.{fmt}", PhotoInfo(), quality=quality)
        sizes[quality] = (tmp_path / f"q{quality}.{fmt}").stat().st_size
    assert sizes[30] < 0.7 * sizes[95]


def _p3_photo(path: Path, **save) -> np.ndarray:
    rgb = np.array(_noise(96, 64))
    rgb[:8, :8] = (0, 255, 0)  # Display P3's green, outside sRGB
    Image.fromarray(rgb).save(path, icc_profile=display_p3(), **save)
    return rgb


def _littlecms(rgb: np.ndarray, source: bytes, target: bytes | None) -> np.ndarray:
    srgb = ImageCms.createProfile("sRGB")
    to = ImageCms.ImageCmsProfile(io.BytesIO(target)) if target else srgb
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(source)), to, "RGB", "RGB")
    return np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), transform)).astype(np.float32) / 255


def test_a_profile_is_honoured_as_littlecms_reads_it(tmp_path):
    rgb = _p3_photo(tmp_path / "p3.png")
    expected = _littlecms(rgb, display_p3(), None)
    assert np.abs(load_image(tmp_path / "p3.png")[0].permute(1, 2, 0).numpy() - expected).max() <= 1 / 255
    pixels, info = load_photo(tmp_path / "p3.png")
    assert info.icc_profile == display_p3()
    assert np.abs(pixels[0].permute(1, 2, 0).numpy() * 255 - rgb).max() < 1e-3  # as they are in the file


def test_outputs_are_written_in_the_profile_asked_for(tmp_path):
    rgb = _p3_photo(tmp_path / "p3.png")
    pixels, info = load_photo(tmp_path / "p3.png")
    (tmp_path / "adobe.icc").write_bytes(adobe_rgb())
    save_photo(pixels, tmp_path / "own.png", info, space=info.icc_profile)
    save_photo(pixels, tmp_path / "srgb.png", info, space=info.icc_profile, profile="srgb")
    save_photo(pixels, tmp_path / "adobe.png", info, space=info.icc_profile, profile=str(tmp_path / "adobe.icc"))
    with Image.open(tmp_path / "own.png") as own:
        assert own.info["icc_profile"] == display_p3() and np.array_equal(np.asarray(own), rgb)
    with Image.open(tmp_path / "srgb.png") as srgb:
        assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(srgb.info["icc_profile"]))).strip()
        assert np.abs(np.asarray(srgb) / 255 - _littlecms(rgb, display_p3(), None)).max() <= 1.5 / 255
    with Image.open(tmp_path / "adobe.png") as adobe:
        assert adobe.info["icc_profile"] == adobe_rgb()
        assert np.abs(np.asarray(adobe) / 255 - _littlecms(rgb, display_p3(), adobe_rgb())).max() <= 1.5 / 255


def test_an_untagged_photo_gives_an_untagged_output(tmp_path):
    _noise().save(tmp_path / "plain.jpg")
    pixels, info = load_photo(tmp_path / "plain.jpg")
    assert info.icc_profile is None
    save_photo(pixels, tmp_path / "out.png", info)
    with Image.open(tmp_path / "out.png") as out:
        assert "icc_profile" not in out.info


def test_a_grey_profile_is_converted_to_srgb(tmp_path):
    Image.new("L", (64, 64), 128).save(tmp_path / "linear.png", icc_profile=grey_profile(para(0, 1.0)))
    image, info = load_photo(tmp_path / "linear.png")
    assert info.icc_profile is None  # converted: a grey profile cannot describe an RGB result
    expected = 1.055 * (128 / 255) ** (1 / 2.4) - 0.055  # linear light 128/255, sRGB-encoded
    torch.testing.assert_close(image, torch.full_like(image, expected), atol=2e-4, rtol=0)


@pytest.mark.parametrize(
    ("profile", "mode", "phrase"),
    [(b"garbage" * 40, "RGB", "its embedded ICC colour profile cannot be read (not an ICC profile)"),
     (display_p3()[:300], "RGB", "its embedded ICC colour profile cannot be read (truncated"),
     (display_p3(), "CMYK", "its embedded ICC colour profile is for RGB colours, not its CMYK pixels"),
     (grey_profile(para(0, 2.2)), "RGB", "is for GRAY colours, not its RGB pixels")],
)
def test_an_unusable_embedded_profile_is_one_line(tmp_path, profile, mode, phrase):
    path = tmp_path / "tagged.tif"
    Image.new(mode, (64, 64)).save(path, icc_profile=profile)
    _fails(lambda: load_image(path), str(path), phrase)
    _fails(lambda: load_photo(path), str(path), phrase)


def test_an_unusable_output_profile_is_one_line(tmp_path):
    image = torch.rand(1, 3, 64, 64)
    (tmp_path / "notes.icc").write_text("not a profile\n" * 20)
    (tmp_path / "lab.icc").write_bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes())
    cases = [("missing.icc", "no such file (give source, srgb or an ICC profile's file)"),
             ("notes.icc", "not a usable ICC profile (not an ICC profile)"),
             ("lab.icc", "for Lab colours; outputs need an RGB colour space profile")]
    for name, phrase in cases:
        label = f"--output-profile: {tmp_path / name}"
        _fails(lambda n=name: save_photo(image, tmp_path / "out.png", PhotoInfo(), profile=str(tmp_path / n)),
               label, phrase)
        _fails(lambda n=name: check_output_path(tmp_path / "out.png", profile=str(tmp_path / n)), label, phrase)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.icc", "notes.icc"]


INPUT_ONLY = CORPORA.parent / "images" / "content" / "redwoods.jpg"


@pytest.mark.skipif(not INPUT_ONLY.is_file(), reason=f"needs {INPUT_ONLY} (a photo with a camera's table profile, "
                    "not part of the repository)")
def test_a_profile_for_input_only_is_read_by_littlecms_and_outputs_fall_back_to_srgb(tmp_path):
    pixels, info = load_photo(INPUT_ONLY)
    srgb = load_image(INPUT_ONLY)
    assert info.icc_profile is not None and (srgb - pixels).abs().mean() > 0.002
    save_photo(srgb, tmp_path / "out.jpg", info)  # cannot be converted into that profile: sRGB, tagged
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.info["icc_profile"] == output_profile("srgb")
    save_photo(pixels, tmp_path / "own.jpg", info, space=info.icc_profile)  # already in it: kept so
    with Image.open(tmp_path / "own.jpg") as own:
        assert own.info["icc_profile"] == info.icc_profile


@pytest.mark.parametrize("bits", [8, 16])
def test_arrays_read_convert_and_write_as_tensors_do(tmp_path, bits):
    # The torch-free path (``read_photo`` and numpy arrays through the same functions) must write
    # what the tensor path writes, profile conversion and 16 bits included.
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 1 << bits, (40, 48, 3)).astype(np.uint16 if bits == 16 else np.uint8)
    source = tmp_path / "p3.png"
    save_image(torch.from_numpy(pixels.astype(np.float32) / ((1 << bits) - 1)).permute(2, 0, 1)[None], source,
               bits=bits, icc_profile=display_p3())
    array, info = read_photo(source)
    tensor, same = load_photo(source)
    assert isinstance(array, np.ndarray) and array.shape == (1, 3, 40, 48) and same == info and info.bits == bits
    assert np.array_equal(array, tensor.numpy())
    as_srgb = to_srgb(array, info.icc_profile)
    assert isinstance(as_srgb, np.ndarray) and np.array_equal(as_srgb, to_srgb(tensor, info.icc_profile).numpy())
    for name, image in (("array", as_srgb), ("tensor", torch.from_numpy(as_srgb.copy()))):
        save_photo(image, tmp_path / f"{name}.png", info, profile="srgb")
    assert (tmp_path / "array.png").read_bytes() == (tmp_path / "tensor.png").read_bytes()
    assert to_pil(array).tobytes() == to_pil(tensor).tobytes()
    assert np.array_equal(resize_long_side(array, 24), resize_long_side(tensor, 24).numpy())
