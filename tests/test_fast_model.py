from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from impasto import colour, config, style_spec
from impasto.errors import InputError, WeightsError
from impasto.fast import styles
from impasto.fast.model import FORMAT, read_model, save_model
from impasto.fast.network import Architecture, TransformNet
from impasto.fast.styles import one_style_names, resolve
from impasto.fast.stylize import stylize


@pytest.fixture(scope="module")
def net() -> TransformNet:
    torch.manual_seed(1)
    return TransformNet(Architecture(width=4, blocks=1)).eval()


@pytest.fixture
def model_file(tmp_path: Path, net: TransformNet) -> Path:
    path = tmp_path / "tiny.pt"
    save_model(net, path, "tiny", {"iterations": 3, "seconds": 1.5, "settings": {"style_layers": ["relu1_1"]}})
    return path


def test_round_trip_keeps_network_and_metadata(model_file: Path, net: TransformNet) -> None:
    model = read_model(model_file)
    assert model.style == "tiny" and model.architecture == net.arch and model.source == str(model_file)
    assert model.training == {"iterations": 3, "seconds": 1.5, "settings": {"style_layers": ["relu1_1"]}}
    record = torch.load(model_file, weights_only=True)
    assert record["format"] == FORMAT and record["version"] == 1
    assert record["architecture"] == {"variant": None, "width": 4, "blocks": 1, "kernel": 9, "stages": 2,
                                     "upsample": "nearest"}
    assert all(t.dtype == torch.float16 for t in record["state_dict"].values())
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        # fp16 storage: weights rounded to 11 significant bits.
        assert (model.network(x) - net(x)).abs().max() < 5e-3
    assert not any(p.requires_grad for p in model.network.parameters())


def _record(model_file: Path) -> dict:
    return torch.load(model_file, weights_only=True)


BAD_FILES: dict[str, tuple[Callable[[Path, Path], object], str]] = {
    "corrupt bytes": (lambda p, good: p.write_bytes(b"\x00garbage, not a model"), "cannot read model file"),
    "truncated": (lambda p, good: p.write_bytes(good.read_bytes()[:2000]), "cannot read model file"),
    "random state dict": (lambda p, good: torch.save({"w": torch.rand(3)}, p), "not an impasto fast-style model"),
    "another format": (lambda p, good: torch.save({**_record(good), "format": "pix2pix"}, p), "format 'pix2pix'"),
    "future version": (lambda p, good: torch.save({**_record(good), "version": 2}, p), "version 2 is newer"),
    "wrong shapes": (
        lambda p, good: torch.save({**_record(good), "architecture": {"width": 8, "blocks": 1}}, p),
        "expected (8, 3, 9, 9)",
    ),
    "missing blocks": (
        lambda p, good: torch.save({**_record(good), "architecture": {"width": 4, "blocks": 2}}, p),
        "missing for a width-4, 2-block, 9x9-edge, 2-stage network",
    ),
    "bad architecture": (
        lambda p, good: torch.save({**_record(good), "architecture": {"width": "wide"}}, p), "invalid architecture"),
    "non-finite": (
        lambda p, good: torch.save({**_record(good), "state_dict": {
            k: v.fill_(float("nan")) for k, v in _record(good)["state_dict"].items()}}, p),
        "NaN or infinite",
    ),
    "not a file": (lambda p, good: p.mkdir(), "not a file"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_model_files_give_one_line_naming_the_file(tmp_path: Path, model_file: Path, case: str) -> None:
    make, phrase = BAD_FILES[case]
    bad = tmp_path / "bad.pt"
    make(bad, model_file)
    with pytest.raises(WeightsError) as info:
        read_model(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}: ") and phrase in message and "\n" not in message, message


def test_shipped_styles(tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(style_spec, "models_folder", lambda: tmp_path / "absent")
    assert one_style_names() == []
    with pytest.raises(InputError, match="no styles are installed"):
        resolve("starry_night")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.pt").write_bytes(model_file.read_bytes())
    monkeypatch.setattr(style_spec, "models_folder", lambda: folder)
    assert one_style_names() == ["tiny"]
    assert resolve("tiny").style == "tiny"
    with pytest.raises(InputError, match="installed: tiny"):
        resolve("mosaic")


def test_colour_preservation_keeps_the_photos_chroma(net: TransformNet, content64: torch.Tensor) -> None:
    def chroma_error(output: torch.Tensor) -> float:
        return float((colour.rgb_to_yiq(output)[:, 1:] - colour.rgb_to_yiq(content64)[:, 1:]).abs().mean())

    plain = stylize(net, content64)
    kept = stylize(net, content64, preserve_color=True)
    assert kept.shape == content64.shape
    assert chroma_error(kept) < 0.01 < chroma_error(plain)
    assert chroma_error(kept) < 0.2 * chroma_error(plain)
    # The luminance is the network's.
    assert torch.allclose(colour.luminance(kept), colour.luminance(plain), atol=0.02)


def test_stylize_checks_its_input(net: TransformNet) -> None:
    with pytest.raises(InputError, match="expected shape"):
        stylize(net, torch.rand(3, 32, 32))
    with pytest.raises(InputError, match="at least 8 px"):
        stylize(net, torch.rand(1, 3, 7, 32))


def test_large_batches_run_in_chunks_with_the_same_result(net: TransformNet, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = torch.rand(5, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    calls: list[int] = []

    def backend(image: torch.Tensor) -> torch.Tensor:
        calls.append(image.shape[0])
        with torch.no_grad():
            return net(image)

    monkeypatch.setattr(config, "CHUNK_PIXELS", 2 * 32 * 48)  # two images a call
    chunked = stylize(net, photos, backend=backend)
    assert calls == [2, 2, 1]
    with torch.no_grad():
        assert torch.allclose(chunked, net(photos), atol=1e-5)


def test_pickled_objects_are_refused(tmp_path: Path, model_file: Path) -> None:
    # A file holding arbitrary Python objects is never unpickled (torch.load weights_only).
    bad = tmp_path / "evil.pt"
    torch.save({**_record(model_file), "training": Path("/")}, bad)
    with pytest.raises(WeightsError, match="objects other than tensors") as info:
        read_model(bad)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_a_process_reads_a_model_file_once_until_it_changes(tmp_path: Path, model_file: Path) -> None:
    from impasto.style_spec import ModelFile

    first = styles.load_style(ModelFile(model_file))
    assert styles.load_style(ModelFile(model_file)) is first
    other = TransformNet(Architecture(width=4, blocks=1))
    replacement = tmp_path / "new.pt"
    save_model(other, replacement, "tiny", {"iterations": 4})
    replacement.replace(model_file)  # a new file in its place, as an atomic writer leaves it
    second = styles.load_style(ModelFile(model_file))
    assert second is not first and second.training == {"iterations": 4}
    model_file.unlink()
    with pytest.raises(WeightsError, match="model file not found"):
        styles.load_style(ModelFile(model_file))
