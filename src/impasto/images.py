"""Reading, resizing and writing images: the only module that touches Pillow.

Images inside impasto are float32 tensors of shape (1, 3, H, W) holding RGB values in [0, 1].
The functions that convert, resize and write images take numpy arrays of that shape as well and
return what they were given; ``read_photo`` loads one as such an array. That is the path of the
commands that run without torch (``impasto apply`` on an ONNX graph): torch is imported only
where a tensor is made or resized.
Every problem with a user's file is raised as an ``InputError`` whose one-line message starts with
the file's path ("array" or "image" for in-memory inputs).

Colour: ``load_image`` gives sRGB, converting files that carry an ICC profile (a Display P3 or
Adobe RGB photo, a CMYK scan). ``load_photo`` gives a photo's pixels as they are, with what it
carries besides (``PhotoInfo``: profile, EXIF, XMP, DPI, 16 bits), and ``save_photo`` writes an
image made from it the same way: in its profile (or another), with its metadata, at its depth.
Matrix/TRC profiles are converted in floating point (``impasto.profiles``); others by LittleCMS
(Pillow's ImageCms), 8 bits a channel.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import sys
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin, TiffImagePlugin, TiffTags, UnidentifiedImageError

from impasto import profiles, storage
from impasto.config import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from torch import Tensor

MIN_SIDE = 32

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
_FORMATS_HINT = "use .png, .jpg, .webp or .tiff"
# File names taken for images when a folder is given (what impasto writes, it also reads).
IMAGE_SUFFIXES = tuple(_FORMATS)
# Pillow's decoders report corrupt data through many exception types, not only OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)
_ALPHA_MODES = {"LA", "PA", "RGBA", "RGBa"}
_GREY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
_DEEP_MODES = {"F", "I;16", "I;16B", "I;16L", "I;16N"}
# Formats that hold 16 bits a channel; the others are written at 8.
DEEP_FORMATS = ("PNG", "TIFF")
# Pillow reads 16-bit RGB(A) as 8-bit, unpacking each sample's high byte with these raw modes; the
# same decode with the other byte order's raw mode gives the low bytes.
_DEEP_RAWMODES = {f"{mode};16{order}" for mode in ("RGB", "RGBA") for order in "BLN"}
_EXIF_ORIENTATION = 0x0112
# TIFF tags that describe a file's layout or are carried in their own right (ICC, XMP, IPTC,
# Photoshop): not EXIF to copy into another file.
_LAYOUT_TAGS = {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 292, 293, 317, 320,
                322, 323, 324, 325, 338, 339, 340, 341, 347, 513, 514, 530, 531, 532, 700, 33723, 34377, 34675}
_XMP_ORIENTATION = (re.compile(rb"(tiff:Orientation=[\"'])[0-9]+([\"'])"),
                    re.compile(rb"(<tiff:Orientation>)[0-9]+(</tiff:Orientation>)"))
# EXIF's own tags that depend on the image written: its size and whether it is sRGB.
_EXIF_IFD, _EXIF_COLOUR_SPACE, _EXIF_WIDTH, _EXIF_HEIGHT = 0x8769, 0xA001, 0xA002, 0xA003

PathLike = str | os.PathLike[str]
# An image as a tensor or as a numpy array, (1, 3, H, W) float32 in [0, 1]; a function taking
# one returns the same kind.
Pixels = TypeVar("Pixels", "Tensor", np.ndarray)


@dataclass(frozen=True)
class PhotoInfo:
    """What a photo holds besides its pixels, for the images made from it (``save_photo``).

    ``icc_profile``: the RGB colour profile its pixels are in (None: sRGB, as an untagged file is
    taken to be; grey and CMYK files are converted to sRGB as they load, so their profiles are
    not kept). ``exif``: its EXIF block with the orientation reset to 1 (the pixels are turned
    upright as they load), without the thumbnail or a TIFF's layout tags; EXIF that Pillow cannot
    read is left out. ``xmp``: its XMP packet, orientation likewise reset. ``dpi``: its
    resolution. ``bits``: bits a channel of its pixels, 8 or 16."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    bits: int = 8


def load_image(
    source: PathLike | bytes | Image.Image | np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    label: str | None = None,
    formats: Sequence[str] | None = None,
) -> Tensor:
    """Load an image file, the bytes of one, a PIL image or a numpy array as a (1, 3, H, W)
    float32 sRGB tensor in [0, 1].

    EXIF orientation is applied. Grey images are replicated to RGB; images with an alpha channel
    (or a transparent palette entry) are composited onto WHITE. 16-bit data keeps its precision
    (divided by 65535). An embedded ICC profile is honoured: the pixels are converted to sRGB
    (colours outside sRGB clipped); an unreadable profile is an InputError. Both sides must be at
    least 32 px and the pixel count at most ``max_pixels``, checked from the header so that an
    oversized file is never decoded. Pillow's decompression-bomb check is also enforced (without
    touching its global limit), so files above ``PIL.Image.MAX_IMAGE_PIXELS`` (about 89.5
    million pixels) are refused whatever ``max_pixels`` is.

    Messages start with ``label`` (default: the path; "image" for bytes). ``formats`` (Pillow's
    names, such as "PNG") limits the decoders tried, for data from untrusted sources: Pillow
    otherwise also opens formats whose plugins hand the data to other programs (EPS).
    """
    image, info = load_photo(source, max_pixels, label=label, formats=formats)
    return to_srgb(image, info.icc_profile, _label(source, label))


def load_photo(
    source: PathLike | bytes | Image.Image | np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    label: str | None = None,
    formats: Sequence[str] | None = None,
) -> tuple[Tensor, PhotoInfo]:
    """Load a photo as ``load_image`` does, but with its pixels in its own colour space, the
    one ``PhotoInfo.icc_profile`` names (not converted to sRGB), and with what else it holds.

    16-bit PNG and TIFF files keep their 16 bits: Pillow reads 16-bit RGB as 8-bit, so the low
    bytes are decoded in a second pass. Grey files with a grey profile and CMYK files with a
    profile are converted to sRGB here (their profiles cannot describe an RGB result).
    """
    pixels, info = read_photo(source, max_pixels, label=label, formats=formats)
    return _as_tensor(pixels), info


def read_photo(
    source: PathLike | bytes | Image.Image | np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    label: str | None = None,
    formats: Sequence[str] | None = None,
) -> tuple[np.ndarray, PhotoInfo]:
    """``load_photo``'s photo as a numpy array of the same shape, without torch."""
    label = _label(source, label)
    if isinstance(source, np.ndarray):
        return _load_array(source, max_pixels), PhotoInfo(bits=8 if source.dtype == np.uint8 else 16)
    if isinstance(source, Image.Image):
        return _decode(source, label, max_pixels)
    if isinstance(source, bytes):
        if not source:
            raise storage.one_line(label, "empty file")
        return _open(source, label, max_pixels, formats)
    path = Path(source)
    _check_input_file(path, label)
    return _open(path, label, max_pixels, formats)


def _label(source: object, label: str | None) -> str:
    if label:
        return label
    if isinstance(source, np.ndarray):
        return "array"
    return "image" if isinstance(source, (bytes, Image.Image)) else os.fsdecode(source)  # type: ignore[arg-type]


def _open(source: Path | bytes, label: str, max_pixels: int, formats: Sequence[str] | None
          ) -> tuple[np.ndarray, PhotoInfo]:
    def opened() -> Image.Image:
        return Image.open(source if isinstance(source, Path) else io.BytesIO(source),
                          formats=None if formats is None else list(formats))

    try:
        with warnings.catch_warnings():
            # Local filter only: the global Image.MAX_IMAGE_PIXELS and warning filters stay as they are.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with opened() as img:
                return _decode(img, label, max_pixels, opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise storage.one_line(label, f"image is too large to decode safely ({exc})") from None
    except UnidentifiedImageError:
        raise storage.one_line(label, "not an image file (or an unsupported format)") from None
    except PermissionError:
        raise storage.one_line(label, "permission denied") from None
    except OSError as exc:
        raise storage.one_line(label, f"cannot read file ({exc.strerror or exc})") from None


def _check_input_file(path: Path, label: str) -> None:
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise storage.one_line(label, "file not found") from None
    except PermissionError:
        raise storage.one_line(label, "permission denied") from None
    except OSError as exc:
        raise storage.one_line(label, f"cannot read file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise storage.one_line(label, "is a directory, not an image")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or device could block forever.
        raise storage.one_line(label, "not a regular file")
    if info.st_size == 0:
        raise storage.one_line(label, "empty file")


def _check_size(label: str, width: int, height: int, max_pixels: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise storage.one_line(label, f"image is {width}x{height}; both sides must be at least {MIN_SIDE} px")
    if width * height > max_pixels:
        raise storage.one_line(
            label, f"image has {width * height} pixels, more than the limit of {max_pixels} (--max-pixels)"
        )


def _decode(img: Image.Image, label: str, max_pixels: int, reopen: Callable[[], Image.Image] | None = None
            ) -> tuple[np.ndarray, PhotoInfo]:
    _check_size(label, *img.size, max_pixels)
    deep = _deep_rawmode(img) if reopen is not None else None
    try:
        # Decoding happens here, inside the try, so a truncated file fails instead of loading grey.
        img.load()
        low = _low_bytes(reopen, deep) if reopen is not None and deep is not None else None
        exif = img.getexif()
    except _DECODE_ERRORS as exc:
        raise storage.one_line(label, f"cannot decode image, the file is truncated or corrupt ({exc})") from None
    xmp, dpi = _xmp(img), _dpi(img)
    bits = 16 if low is not None or img.mode in _DEEP_MODES or (img.mode == "I" and img.getextrema()[1] > 255) else 8
    profile = _input_profile(img, label)
    if profile is not None and img.mode == "CMYK":
        img, profile = _cms_convert(img, profile, None, "RGB", label), None
    if low is not None:
        data = ((np.asarray(img).astype(np.uint16) << 8) | low).astype(np.float32) / 65535.0
    else:
        data = _pil_to_array(img, label)
    rgb = _rgb(_upright(data, exif.get(_EXIF_ORIENTATION, 1)))
    if profile is not None and profiles.header(profile)[1] == "GRAY":
        grey = profiles.parse(profile)
        if grey is not None:
            rgb = np.clip(profiles.convert(rgb, grey, profiles.SRGB), 0.0, 1.0)
        else:
            rgb = _array(_cms_convert(Image.fromarray(_quantise(rgb, 8)[:, :, 0]), profile, None, "RGB", label))
        profile = None
    return _nchw(rgb), PhotoInfo(profile, _carried_exif(exif), xmp, dpi, bits)


def _deep_rawmode(img: Image.Image) -> str | None:
    """The raw mode of a 16-bit RGB(A) image that Pillow is about to decode to 8 bits, else None."""
    if img.mode not in ("RGB", "RGBA") or not img.tile:
        return None
    raws = {_rawmode(tile.args if hasattr(tile, "args") else tile[3]) for tile in img.tile}
    raw = raws.pop() if len(raws) == 1 else None
    return raw if raw in _DEEP_RAWMODES else None


def _rawmode(args: Any) -> str | None:
    if isinstance(args, str):
        return args
    return args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else None


def _low_bytes(reopen: Callable[[], Image.Image], rawmode: str) -> np.ndarray:
    """The low bytes of a 16-bit image's samples: the decode again, with the raw mode that takes
    the other byte of each sample."""
    order = rawmode[-1]
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    low = rawmode[:-1] + ("B" if order == "L" else "L")
    with reopen() as again:
        again.tile = [_retile(tile, low) for tile in again.tile]
        again.load()
        return np.asarray(again).astype(np.uint16)


def _retile(tile: Any, rawmode: str) -> Any:
    args = tile[3]
    args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    return tile._replace(args=args) if hasattr(tile, "_replace") else (*tile[:3], args)


# EXIF orientation → the turn that makes the picture upright (as ImageOps.exif_transpose, on arrays).
_TURNS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1),
}


def _upright(data: np.ndarray, orientation: Any) -> np.ndarray:
    turn = _TURNS.get(orientation) if isinstance(orientation, int) else None
    return np.ascontiguousarray(turn(data)) if turn is not None else data


def _input_profile(img: Image.Image, label: str) -> bytes | None:
    """The image's ICC profile, checked: readable, and for colours of the pixels' kind."""
    data = img.info.get("icc_profile")
    if not data:
        return None
    try:
        _, space = profiles.header(data)
        if profiles.parse(data) is None:
            _cms_profile(data)
    except (profiles.ProfileError, ImageCms.PyCMSError, OSError) as exc:
        raise storage.one_line(label, f"its embedded ICC colour profile cannot be read ({exc}); save the image "
                               "without it, or with a valid one") from None
    pixels = "CMYK" if img.mode == "CMYK" else "GRAY" if img.mode in _GREY_MODES else "RGB"
    if space != pixels and not (pixels == "GRAY" and space == "RGB"):
        raise storage.one_line(label, f"its embedded ICC colour profile is for {space} colours, not its {pixels} "
                               "pixels; save the image without it, or with a matching one")
    return data


def _carried_exif(exif: Image.Exif) -> bytes | None:
    """The EXIF block to copy into images made from this one: orientation 1, no layout tags."""
    if not len(exif):
        return None
    try:
        carried = Image.Exif()  # a copy: the image's own EXIF stays as it is
        carried.load(exif.tobytes())
        for tag in _LAYOUT_TAGS & set(carried):
            del carried[tag]
        if _EXIF_ORIENTATION in carried:
            carried[_EXIF_ORIENTATION] = 1
        return carried.tobytes()
    except _DECODE_ERRORS:
        return None


def _xmp(img: Image.Image) -> bytes | None:
    xmp = img.info.get("xmp") or getattr(img, "tag_v2", {}).get(700)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if not isinstance(xmp, bytes) or not xmp:
        return None
    for pattern in _XMP_ORIENTATION:
        xmp = pattern.sub(rb"\g<1>1\g<2>", xmp)
    return xmp


def _dpi(img: Image.Image) -> tuple[float, float] | None:
    dpi = img.info.get("dpi")
    try:
        x, y = (round(float(v), 2) for v in dpi)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return (x, y) if all(math.isfinite(v) and v > 0 for v in (x, y)) else None


def from_pil(img: Image.Image, label: str = "image") -> Tensor:
    """A PIL image as a (1, 3, H, W) tensor, converted as ``load_image`` does but without its
    size checks or EXIF handling."""
    return _as_tensor(_nchw(_rgb(_pil_to_array(img, label))))


def _pil_to_array(img: Image.Image, label: str) -> np.ndarray:
    """Float32 (H, W), (H, W, 3) or (H, W, 4) array in [0, 1]."""
    mode = img.mode
    if mode == "I" or mode.startswith("I;16"):
        data = np.asarray(img).astype(np.float32)
        # Pillow's convert("RGB") clips integer data at 255, so scale 16-bit data ourselves.
        scale = 255.0 if mode == "I" and data.max() <= 255 else 65535.0
        return np.clip(data / scale, 0.0, 1.0)
    if mode == "F":
        data = np.asarray(img).astype(np.float32)
        return np.clip(data / 255.0 if data.max() > 1 else data, 0.0, 1.0)
    has_alpha = mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info)
    try:
        rgb = img if mode == "RGB" else img.convert("RGBA" if has_alpha else "RGB")
    except ValueError:
        raise storage.one_line(label, f"unsupported colour mode {mode}") from None
    return np.asarray(rgb).astype(np.float32) / 255.0


def _load_array(array: np.ndarray, max_pixels: int) -> np.ndarray:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise storage.one_line("array", f"shape {array.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    height, width = array.shape[:2]
    _check_size("array", width, height, max_pixels)
    if array.dtype == np.uint8:
        return _nchw(_rgb(array.astype(np.float32) / 255.0))
    if array.dtype == np.uint16:
        return _nchw(_rgb(array.astype(np.float32) / 65535.0))
    if not np.issubdtype(array.dtype, np.floating):
        raise storage.one_line("array", f"unsupported dtype {array.dtype} (use uint8, uint16 or float in [0, 1])")
    if not (np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0):
        raise storage.one_line("array", "float values must lie in [0, 1]")
    return _nchw(_rgb(array.astype(np.float32)))


def _rgb(data: np.ndarray) -> np.ndarray:
    """An (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array as (H, W, 3), alpha composited onto white."""
    if data.ndim == 2:
        data = data[:, :, None]
    if data.shape[2] == 4:
        alpha = data[:, :, 3:]
        data = data[:, :, :3] * alpha + (1.0 - alpha)
    if data.shape[2] == 1:
        data = np.repeat(data, 3, axis=2)
    return data


def _nchw(rgb: np.ndarray) -> np.ndarray:
    """An (H, W, 3) array as a contiguous (1, 3, H, W) float32 array."""
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)[None]


def _as_tensor(pixels: np.ndarray) -> Tensor:
    import torch  # here: reading and writing images needs no torch

    return torch.from_numpy(pixels)


def _numpy(image: Tensor | np.ndarray) -> np.ndarray:
    """A tensor's or array's values as a float32 numpy array on the CPU (the same shape)."""
    if isinstance(image, np.ndarray):
        return image.astype(np.float32, copy=False)
    import torch  # already loaded: a tensor was given

    return image.detach().to("cpu", torch.float32).numpy()


def _like(pixels: np.ndarray, kind: Tensor | np.ndarray) -> Any:
    """``pixels`` as the kind of image ``kind`` is: the array itself, or a tensor."""
    return pixels if isinstance(kind, np.ndarray) else _as_tensor(np.ascontiguousarray(pixels))


def _array(img: Image.Image) -> np.ndarray:
    """An 8-bit RGB PIL image as an (H, W, 3) float array in [0, 1]."""
    return np.asarray(img.convert("RGB")).astype(np.float32) / 255.0


def _quantise(rgb: np.ndarray, bits: int) -> np.ndarray:
    """Float values in [0, 1] as integers of ``bits`` bits (8 or 16), rounded."""
    top = (1 << bits) - 1
    return (np.clip(rgb, 0.0, 1.0) * top + 0.5).astype(np.uint16 if bits == 16 else np.uint8)


def long_side_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """Height and width of an image of ``height`` x ``width`` scaled to long side ``long_side``."""
    if long_side < 1:
        raise ValueError(f"long_side must be positive, got {long_side}")
    scale = long_side / max(height, width)
    if height >= width:
        return long_side, max(1, round(width * scale))
    return max(1, round(height * scale)), long_side


def resize_long_side(image: Pixels, long_side: int) -> Pixels:
    """Resize (bicubic, antialiased) so that the longer side is ``long_side`` pixels."""
    return resize_to(image, *long_side_shape(*image.shape[-2:], long_side))


def resize_to(image: Pixels, height: int, width: int) -> Pixels:
    """Resize (bicubic, antialiased) a (1, 3, H, W) image to exactly ``height`` x ``width``."""
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {height}x{width}")
    if tuple(image.shape[-2:]) == (height, width):
        return image
    import torch  # one resampler for tensors and arrays alike: torch's

    tensor = torch.from_numpy(image) if isinstance(image, np.ndarray) else image
    resized = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bicubic", antialias=True,
                                              align_corners=False)
    # Bicubic overshoots near edges.
    clamped = resized.clamp(0.0, 1.0)
    return clamped.numpy() if isinstance(image, np.ndarray) else clamped


def to_pil(image: Tensor | np.ndarray) -> Image.Image:
    """An 8-bit RGB PIL image from a (1, 3, H, W) or (3, H, W) float image in [0, 1]."""
    data = np.round(np.clip(_hwc(image), 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(data))


# --- colour profiles -------------------------------------------------------------------------


def to_srgb(image: Pixels, profile: bytes | None, label: str = "image") -> Pixels:
    """``image``, its pixels in the colours of the ICC ``profile`` (None: sRGB already), as sRGB
    in [0, 1]; colours outside sRGB are clipped."""
    return convert_profile(image, profile, None, label)


def convert_profile(image: Pixels, source: bytes | None, target: bytes | None, label: str = "image") -> Pixels:
    """A (1, 3, H, W) image whose pixels are in the colours of the ICC profile ``source`` (None:
    sRGB), in those of ``target``, clipped to [0, 1]. White goes to white (relative colorimetric):
    exactly, in floating point, between matrix/TRC profiles, so that 16-bit data keeps its
    precision; otherwise through LittleCMS's tables, 8 bits a channel."""
    if source == target:
        return image
    matrices = _matrix(source), _matrix(target)
    if matrices[0] is not None and matrices[1] is not None:
        if profiles.same(matrices[0], matrices[1]):
            return image
        rgb = np.ascontiguousarray(_hwc(image))
        return _like(_nchw(np.clip(profiles.convert(rgb, matrices[0], matrices[1]), 0.0, 1.0)), image)
    return _like(_nchw(_array(_cms_convert(to_pil(image), source, target, "RGB", label))), image)


def _matrix(data: bytes | None) -> profiles.MatrixProfile | None:
    return profiles.SRGB if data is None else profiles.parse(data)


@lru_cache(maxsize=16)
def _cms_profile(data: bytes | None) -> ImageCms.ImageCmsProfile:
    """LittleCMS's reading of a profile (None: its own sRGB)."""
    if data is None:
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return ImageCms.ImageCmsProfile(io.BytesIO(data))


@lru_cache(maxsize=16)
def _cms_transform(source: bytes | None, target: bytes | None, mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(_cms_profile(source), _cms_profile(target), mode, out_mode)


def _cms_convert(img: Image.Image, source: bytes | None, target: bytes | None, out_mode: str, label: str
                 ) -> Image.Image:
    try:
        return ImageCms.applyTransform(img, _cms_transform(source, target, img.mode, out_mode))
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise storage.one_line(label, f"LittleCMS cannot convert between its colour profiles ({exc})") from None


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """The sRGB profile embedded in outputs asked to be sRGB (LittleCMS's)."""
    return _cms_profile(None).tobytes()


def output_profile(choice: str, info: PhotoInfo | None = None) -> bytes | None:
    """The ICC profile an image made from a photo (``info``) is written in, for
    ``--output-profile`` ``choice``: "source", the photo's own (None, sRGB untagged, for an
    untagged photo; sRGB, tagged, for a profile that describes input only, such as a camera's
    or scanner's table that LittleCMS cannot convert into); "srgb"; or an ICC profile's file."""
    if choice == "srgb":
        return srgb_profile()
    if choice == "source":
        own = info.icc_profile if info is not None else None
        return own if own is None or _writable(own) else srgb_profile()
    return read_profile(choice)


def _writable(data: bytes) -> bool:
    """Whether images can be converted into the colours of this (readable) RGB profile."""
    if profiles.parse(data) is not None:
        return True
    try:
        _cms_transform(None, data, "RGB", "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return False
    return True


MAX_PROFILE_BYTES = 16 << 20


def read_profile(path: PathLike) -> bytes:
    """An RGB ICC profile's file for outputs (``--output-profile FILE``), checked; every problem
    is a one-line InputError naming the option and the file."""
    label = f"--output-profile: {os.fsdecode(path)}"
    try:
        file = Path(path)
        if not file.is_file():
            raise storage.one_line(label, "no such file (give source, srgb or an ICC profile's file)")
        if file.stat().st_size > MAX_PROFILE_BYTES:
            raise storage.one_line(label, "too large to be an ICC profile")
        data = file.read_bytes()
        kind, space = profiles.header(data)
        if profiles.parse(data) is None:
            _cms_profile(data)
    except OSError as exc:
        raise storage.one_line(label, f"cannot read file ({exc.strerror or exc})") from None
    except (profiles.ProfileError, ImageCms.PyCMSError) as exc:
        raise storage.one_line(label, f"not a usable ICC profile ({exc})") from None
    if space != "RGB" or kind in ("link", "abst", "nmcl"):
        raise storage.one_line(label, f"a {kind} profile for {space} colours; outputs need an RGB colour space "
                               "profile (such as Display P3 or Adobe RGB)")
    if not _writable(data):
        raise storage.one_line(label, "describes input only: LittleCMS cannot convert images into it")
    return data


# --- saving ----------------------------------------------------------------------------------


def check_output_path(path: PathLike, inputs: Sequence[PathLike] = (), *, bit_depth: int | None = None,
                      profile: str = "source") -> Path:
    """Check that an image can be written at ``path`` before a long job starts (see
    ``storage.check_output_path``), at ``bit_depth`` bits (16: PNG and TIFF only) in the
    colours of ``--output-profile`` ``profile``; return it as a Path."""
    check_output_format(path, bit_depth, profile)
    return storage.check_output_path(path, inputs)


def check_output_format(path: PathLike, bit_depth: int | None = None, profile: str = "source") -> None:
    """Check that the format ``path``'s extension names can be written at ``bit_depth`` bits
    (16: PNG and TIFF only), and that ``--output-profile`` ``profile`` is usable."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise storage.one_line(os.fsdecode(path), f"unsupported output format '{Path(path).suffix}' ({_FORMATS_HINT})")
    if bit_depth == 16 and _FORMATS[suffix] not in DEEP_FORMATS:
        raise storage.one_line(os.fsdecode(path), f"{_FORMATS[suffix]} holds 8 bits a channel; --bit-depth 16 "
                               "needs .png or .tiff")
    if profile not in profiles.OUTPUT_PROFILES:
        read_profile(profile)


def save_photo(image: Tensor | np.ndarray, path: PathLike, info: PhotoInfo, *, space: bytes | None = None,
               profile: str = "source", bit_depth: int | None = None, quality: int = 95) -> None:
    """Write ``image`` (RGB in [0, 1], its pixels in the colours of the ICC profile ``space``;
    None: sRGB) as an image made from the photo ``info`` describes: converted to, and tagged
    with, ``output_profile(profile, info)``; with the photo's EXIF, XMP and DPI; at
    ``bit_depth`` bits a channel (None: 16 for a 16-bit photo written as PNG or TIFF, else 8);
    ``quality`` for JPEG and WebP."""
    out = check_output_path(path, bit_depth=bit_depth, profile=profile)
    # Pixels already in the photo's own colours keep them, even in a profile that describes input only.
    own = profile == "source" and space is not None and space == info.icc_profile
    target = space if own else output_profile(profile, info)
    bits = bit_depth or (16 if info.bits == 16 and _FORMATS[out.suffix.lower()] in DEEP_FORMATS else 8)
    pixels = convert_profile(image, space, target, os.fsdecode(path))
    save_image(pixels, out, quality=quality, bits=bits, icc_profile=target, info=info)


def save_image(image: Tensor | np.ndarray | Image.Image, path: PathLike, *, quality: int = 95, bits: int = 8,
               icc_profile: bytes | None = None, info: PhotoInfo | None = None) -> None:
    """Write an image in the format its extension names. The write is atomic: on failure no
    temporary file is left and an existing file at ``path`` is untouched. ``quality`` applies to
    JPEG and WebP; ``bits`` (8, or 16 for PNG and TIFF) to tensors, PIL images being written as
    they are (mode included). ``icc_profile`` is embedded (the pixels are taken to be in its
    colours already); ``info``'s EXIF, XMP and DPI are written, the EXIF's image size and colour
    space made this image's."""
    out = check_output_path(path, bit_depth=bits)
    fmt = _FORMATS[out.suffix.lower()]
    img = image if isinstance(image, Image.Image) else to_pil(image) if bits == 8 else None
    deep = _quantise(_hwc(image), 16) if img is None else None
    size = img.size if img is not None else (deep.shape[1], deep.shape[0])  # type: ignore[union-attr]
    options = _save_options(fmt, quality, icc_profile, info, size)
    try:
        with storage.atomic_file(out) as handle:
            if img is not None:
                img.save(handle, format=fmt, **options)
            else:
                handle.write(_png16(deep, options) if fmt == "PNG" else _tiff16(deep, options))
    except (OSError, ValueError) as exc:
        raise storage.one_line(os.fsdecode(path), f"cannot write image ({exc})") from None


def _hwc(image: Tensor | np.ndarray | Image.Image) -> np.ndarray:
    """A (1, 3, H, W) or (3, H, W) image as an (H, W, 3) float32 array (a view where it can be)."""
    if isinstance(image, Image.Image):
        raise ValueError("16-bit output needs a tensor or an array, not a PIL image")
    data = _numpy(image)
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3 or data.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) image, got shape {tuple(data.shape)}")
    return data.transpose(1, 2, 0)


def _save_options(fmt: str, quality: int, icc: bytes | None, info: PhotoInfo | None, size: tuple[int, int]
                  ) -> dict[str, Any]:
    """Pillow's save options for ``fmt``: quality, profile, and the photo's metadata."""
    # zlib level 1 for PNG: half the encoding time of Pillow's default 6 (47 against 92 ms for a
    # stylised 512 x 512 image, measured) for files 4 % larger; the pixels are the same.
    options: dict[str, Any] = (
        {"quality": quality} if fmt in ("JPEG", "WEBP") else {"compress_level": 1} if fmt == "PNG" else {}
    )
    if icc:
        options["icc_profile"] = icc
    if info is None:
        return options
    exif = _exif_for(info, size, icc)
    if info.dpi and fmt != "WEBP":
        options["dpi"] = info.dpi
    if fmt == "TIFF":
        options["tiffinfo"] = _tiff_tags(exif, info.xmp)
        return options
    if exif:
        options["exif"] = exif
    if info.xmp and fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_itxt("XML:com.adobe.xmp", info.xmp)
        options["pnginfo"] = text
    elif info.xmp:
        options["xmp"] = info.xmp
    return options


def _exif_for(info: PhotoInfo, size: tuple[int, int], icc: bytes | None) -> bytes | None:
    """The photo's EXIF for an image of ``size`` in the colours of ``icc``: its pixel size, colour
    space (sRGB or uncalibrated) and resolution made the image's."""
    if info.exif is None:
        return None
    exif = Image.Exif()
    try:
        exif.load(info.exif)
        own = exif.get_ifd(_EXIF_IFD)
        if _EXIF_WIDTH in own or _EXIF_HEIGHT in own:
            own[_EXIF_WIDTH], own[_EXIF_HEIGHT] = size
        if _EXIF_COLOUR_SPACE in own:
            srgb = icc is None or (_matrix(icc) is not None and profiles.same(_matrix(icc), profiles.SRGB))
            own[_EXIF_COLOUR_SPACE] = 1 if srgb else 0xFFFF
        if info.dpi:
            exif[282], exif[283], exif[296] = info.dpi[0], info.dpi[1], 2
        return exif.tobytes()
    except _DECODE_ERRORS:
        return None


def _tiff_tags(exif: bytes | None, xmp: bytes | None) -> TiffImagePlugin.ImageFileDirectory_v2:
    """EXIF and XMP as tags of a TIFF's directory, EXIF's own directories nested, as Pillow's TIFF
    writer copies EXIF (Pillow takes EXIF or a directory of tags, not both); EXIF that cannot be
    written so is left out."""
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    if exif:
        try:
            loaded = Image.Exif()
            loaded.load(exif)
            for key in loaded:
                tags[key] = loaded.get_ifd(key) if key in TiffTags.TAGS_V2_GROUPS else loaded[key]
            tags.tobytes()
        except _DECODE_ERRORS:
            tags = TiffImagePlugin.ImageFileDirectory_v2()
    if xmp:
        tags[700] = xmp
    return tags


def _png16(pixels: np.ndarray, options: dict[str, Any]) -> bytes:
    """A 16-bit RGB PNG of ``pixels`` ((H, W, 3) uint16) with the metadata of Pillow's
    ``options``. Pillow writes no 16-bit colour, so it writes the metadata chunks around a
    1 x 1 image whose header and data are replaced."""
    base = io.BytesIO()
    Image.new("RGB", (1, 1)).save(base, format="PNG", **options)
    height, width = pixels.shape[:2]
    rows = _png_filter(np.ascontiguousarray(pixels, ">u2").reshape(height, width * 3).view(np.uint8), 6)
    data = zlib.compress(rows.tobytes(), 6)
    out = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))]
    out += [_png_chunk(kind, body) for kind, body in _png_chunks(base.getvalue()) if kind not in (b"IHDR", b"IDAT",
                                                                                                     b"IEND")]
    step = 1 << 22
    out += [_png_chunk(b"IDAT", data[i:i + step]) for i in range(0, len(data), step)]
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((kind, data[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_filter(raw: np.ndarray, bpp: int, block: int = 256) -> np.ndarray:
    """PNG's filtered rows of ``raw`` ((H, N) bytes), each led by its filter's number: per row the
    filter (none, sub, up, average, Paeth) whose output has the least sum of absolute values as
    signed bytes (libpng's heuristic); computed ``block`` rows at a time, to bound the memory."""
    out = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    for start in range(0, raw.shape[0], block):
        x = raw[start:start + block].astype(np.int16)
        above = raw[start - 1:start].astype(np.int16) if start else np.zeros((1, raw.shape[1]), np.int16)
        b = np.concatenate([above, x[:-1]])
        a, c = np.zeros_like(x), np.zeros_like(x)
        a[:, bpp:], c[:, bpp:] = x[:, :-bpp], b[:, :-bpp]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]) % 256
        cost = np.minimum(candidates, 256 - candidates).sum(axis=2)
        choice = cost.argmin(axis=0)
        out[start:start + block, 0] = choice
        out[start:start + block, 1:] = candidates[choice, np.arange(len(x))]
    return out


def _tiff16(pixels: np.ndarray, options: dict[str, Any]) -> bytes:
    """A 16-bit RGB TIFF of ``pixels`` ((H, W, 3) uint16), deflate-compressed with horizontal
    differencing, its directory written by Pillow's, with the metadata of Pillow's ``options``."""
    height, width = pixels.shape[:2]
    tags = options.get("tiffinfo") or TiffImagePlugin.ImageFileDirectory_v2()
    difference = pixels.astype("<u2")
    difference[:, 1:] -= pixels[:, :-1].astype("<u2")
    data = zlib.compress(difference.tobytes(), 6)
    # Strip offsets count from the end of the directory; Pillow's writer moves them past it.
    layout = {256: width, 257: height, 258: (16, 16, 16), 259: 8, 262: 2, 273: (0,), 277: 3, 278: height,
              279: (len(data),), 284: 1, 317: 2}
    for tag, value in layout.items():
        tags[tag] = value
    tags.tagtype[273] = tags.tagtype[279] = TiffTags.LONG
    if options.get("icc_profile"):
        tags[34675] = options["icc_profile"]
    if options.get("dpi"):
        tags[282], tags[283], tags[296] = options["dpi"][0], options["dpi"][1], 2
    out = io.BytesIO()
    tags.save(out)
    out.write(data)
    return out.getvalue()
