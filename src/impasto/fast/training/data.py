"""Training data for the fast networks: a folder of photos split by a hash of their names into
training and held-out files, random crops, and reproducible batches.

Every batch is drawn from a generator seeded by (seed, iteration), so a resumed run sees exactly
the batches an uninterrupted one would, with any number of decoding workers. ``batch_stream`` is
every training's batch source: photo crops here, photo and painting pairs for the any-painting
network (``fast.arbitrary.train.make_batch``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from impasto import images
from impasto.config import TrainingSettings
from impasto.errors import InputError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# A batch gives up on a folder where this many files in a row cannot be decoded.
MAX_BAD_IN_A_ROW = 50

T = TypeVar("T")


def held_out(name: str, percent: float) -> bool:
    """Whether a photo belongs to the validation slice: a stable hash of its file name, so the
    split is the same on every machine and never needs files copied around."""
    bucket = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 10_000
    return bucket < percent * 100


class Photos:
    """The photos of a folder, split by name into training and held-out files."""

    def __init__(self, folder: str | os.PathLike[str], holdout_percent: float) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: photo folder not found" if not self.folder.exists()
                             else f"{self.folder}: not a folder")
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
        self.held_out = [p for p in files if held_out(p.name, holdout_percent)]
        self.training = [p for p in files if not held_out(p.name, holdout_percent)]
        if not self.training:
            raise InputError(f"{self.folder}: no training photos (.jpg, .png, .webp) in this folder")
        self.unreadable: set[Path] = set()

    def load(self, path: Path) -> Tensor | None:
        """A photo, or None (and remembered) when it cannot be decoded."""
        if path in self.unreadable:
            return None
        try:
            return images.load_image(path)
        except InputError:
            self.unreadable.add(path)
            return None

    def batch(self, count: int, size: int, generator: torch.Generator) -> Tensor:
        """``count`` random ``size`` px square crops, randomly mirrored, as (count, 3, size, size)."""
        crops: list[Tensor] = []
        misses = 0
        while len(crops) < count:
            index = int(torch.randint(len(self.training), (1,), generator=generator))
            photo = self.load(self.training[index])
            if photo is None:
                misses += 1
                if misses >= MAX_BAD_IN_A_ROW or len(self.unreadable) == len(self.training):
                    raise InputError(f"{self.folder}: {len(self.unreadable)} photos cannot be decoded")
                continue
            misses = 0
            crops.append(random_crop(photo, size, generator))
        return torch.cat(crops)

    def previews(self, count: int, size: int) -> Tensor | None:
        """Centre crops of the first ``count`` readable held-out photos, or None if there are none."""
        crops = []
        for path in self.held_out:
            if len(crops) == count:
                break
            photo = self.load(path)
            if photo is not None:
                crops.append(centre_crop(photo, size))
        return torch.cat(crops) if crops else None


def _cover(photo: Tensor, size: int) -> Tensor:
    """Upscale so that the shorter side is at least ``size`` (the corpus has sides down to ~200 px)."""
    height, width = photo.shape[-2:]
    if min(height, width) >= size:
        return photo
    scale = size / min(height, width)
    return images.resize_to(photo, max(size, round(height * scale)), max(size, round(width * scale)))


def random_crop(photo: Tensor, size: int, generator: torch.Generator) -> Tensor:
    photo = _cover(photo, size)
    height, width = photo.shape[-2:]
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    crop = photo[..., top : top + size, left : left + size]
    return crop.flip(-1) if bool(torch.rand((), generator=generator) < 0.5) else crop


def centre_crop(photo: Tensor, size: int) -> Tensor:
    photo = _cover(photo, size)
    height, width = photo.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return photo[..., top : top + size, left : left + size]


class _Batches(torch.utils.data.Dataset[Any]):
    """Batch ``i`` of a run, the same in any process: a worker returns an error's message rather
    than raising, since DataLoader would re-raise it wrapped in a traceback."""

    def __init__(self, make: Callable[[int], Any], iterations: int) -> None:
        self.make, self.iterations = make, iterations

    def __len__(self) -> int:
        return self.iterations

    def __getitem__(self, iteration: int) -> Any:
        try:
            return self.make(iteration)
        except InputError as exc:
            return _Failed(str(exc))


@dataclass(frozen=True)
class _Failed:
    message: str


def batch_stream(make: Callable[[int], T], config: TrainingSettings, start: int,
                 pin_memory: bool = False) -> Iterator[T]:
    """``make(i)`` for the iterations ``start`` ... ``config.iterations - 1``, in order, made ahead
    by ``config.workers`` processes (``make`` must pickle for them): every training's one batch
    source, whatever a family's batch holds."""
    loader = torch.utils.data.DataLoader(
        _Batches(make, config.iterations), batch_size=None, sampler=range(start, config.iterations),
        num_workers=config.workers, pin_memory=pin_memory, persistent_workers=False,
        prefetch_factor=4 if config.workers else None,
    )
    for batch in loader:
        if isinstance(batch, _Failed):
            raise InputError(batch.message)
        yield batch


def photo_batch(photos: Photos, config: TrainingSettings, iteration: int) -> Tensor:
    """Batch ``iteration`` of a run on photos alone: ``batch_size`` random crops."""
    return photos.batch(config.batch_size, config.crop_size, batch_generator(config.seed, iteration))


def batches(photos: Photos, config: TrainingSettings, start: int, pin_memory: bool = False) -> Iterator[Tensor]:
    """The photo batches of iterations ``start`` ... ``config.iterations - 1``, in order."""
    return batch_stream(functools.partial(photo_batch, photos, config), config, start, pin_memory)


def batch_generator(seed: int, iteration: int) -> torch.Generator:
    # One generator per iteration, derived from (seed, iteration): resuming needs no RNG state.
    return torch.Generator().manual_seed(seed * 1_000_003 + iteration)
