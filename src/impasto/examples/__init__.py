"""The example images that ship with impasto: the photograph of Gatys et al.'s Fig. 2 and 3 and
the four public-domain paintings of their Fig. 3 (credits in SOURCES.md beside this file).

Laid out as every ``--images`` folder is (``content/``, ``style/``), so the gallery, the
comparisons, the studio's thumbnails and the tests run on them with nothing else installed.
Picasso's *Femme nue assise*, the fifth painting of Fig. 3, is still protected in the EU and is
not shipped: put your own copy at ``style/seated_nude.jpg`` of an ``--images`` folder.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
CONTENT = ROOT / "content"
STYLE = ROOT / "style"
PHOTO = CONTENT / "tubingen.jpg"


def painting(name: str) -> Path:
    """The shipped painting ``name`` (``starry_night``, ``the_scream``, ``shipwreck``,
    ``composition_vii``)."""
    return STYLE / f"{name}.jpg"
