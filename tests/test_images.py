from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from impasto.errors import InputError
from impasto.images import (
    check_output_path,
    from_pil,
    load_image,
    resize_long_side,
    resize_to,
    save_image,
    to_pil,
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
