"""The grid ratio of images: how strongly a periodic 4-px or 2-px pattern (hatching, a grid) stands
out of an image's spectrum.

The grey-level image, cut or padded to 512 x 512 and Hann-windowed, gives a power spectrum; at a
period of P px on the horizontal axis (frequency 1/P, bin 512/P) and on the vertical axis, the
ratio is the power there divided by the median power on the ring of the same frequency. A photo
has no preferred period: its ratios stay in the tens; a network whose upsampling leaves a trace
shows hundreds to tens of thousands at its upsampling factor and half of it.

    python bench/grid_ratio.py out/*.jpg                    # one line per image, the largest ratio last
    python bench/grid_ratio.py out/*.jpg --json ratios.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 512
PERIODS = (4, 2)


def grey(path: Path) -> np.ndarray:
    """The image's luma (ITU-R BT.601) in [0, 1], its centre cut to at most SIDE x SIDE."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    top, left = max(0, (luma.shape[0] - SIDE) // 2), max(0, (luma.shape[1] - SIDE) // 2)
    return luma[top:top + SIDE, left:left + SIDE]


def power_spectrum(image: np.ndarray) -> np.ndarray:
    """|FFT|² of the mean-removed, Hann-windowed image, zero-padded to SIDE x SIDE, DC centred."""
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    padded = np.zeros((SIDE, SIDE))
    padded[:h, :w] = (image - image.mean()) * window
    return np.abs(np.fft.fftshift(np.fft.fft2(padded))) ** 2


def grid_ratios(image: np.ndarray) -> dict[str, float]:
    """For each period and axis ("4px_h", "4px_v", "2px_h", "2px_v"): the power at that
    frequency over the median power on its ring."""
    power = power_spectrum(image)
    centre = SIDE // 2
    y, x = np.indices(power.shape)
    radius = np.hypot(y - centre, x - centre)
    ratios = {}
    for period in PERIODS:
        k = SIDE // period
        ring = power[np.abs(radius - k) < 0.5]
        median = float(np.median(ring))
        # At 2 px the frequency is Nyquist: bin -256 (index 0 after the shift) on each axis.
        col, row = (centre + k) % SIDE, (centre + k) % SIDE
        ratios[f"{period}px_h"] = float(power[centre, col]) / median
        ratios[f"{period}px_v"] = float(power[row, centre]) / median
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, dest="json_file", help="also write the ratios to this JSON file")
    args = parser.parse_args(argv)
    results = {}
    for path in args.images:
        ratios = grid_ratios(grey(path))
        results[str(path)] = {**ratios, "max": max(ratios.values())}
        cells = "  ".join(f"{k} {v:9.1f}" for k, v in ratios.items())
        print(f"{path}: {cells}  max {max(ratios.values()):9.1f}")
    if args.json_file:
        args.json_file.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
