"""The studio's HTTP API without its worker: every refusal is a 4xx JSON answer naming the field,
jobs queue in order up to the limit, and what is stored is re-encoded under server-drawn ids."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from colour_profiles import display_p3
from impasto import examples, images
from impasto.config import TransferConfig
from impasto.style_spec import SHIPPED_ARBITRARY
from impasto.web import store
from impasto.web.app import StudioSettings, create_app


def _encode(image: torch.Tensor, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    images.to_pil(image).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels in a few dozen bytes: a decompression bomb's
    header, refused before any pixel is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def photo(content64: torch.Tensor) -> bytes:
    return _encode(content64, "JPEG")


@pytest.fixture
def painting(style64: torch.Tensor) -> bytes:
    return _encode(style64)


def _client(tmp_path: Path, **limits: object) -> TestClient:
    settings = StudioSettings(tmp_path / "data", examples=examples.STYLE, **limits)  # type: ignore[arg-type]
    return TestClient(create_app(settings, worker=False), raise_server_exceptions=False)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, max_upload_bytes=200_000, max_pixels=1_000_000, max_size=256) as c:
        yield c


def _post(client: TestClient, content: bytes | None, style: bytes | None = None, **fields: str):
    files = {}
    if content is not None:
        files["content"] = ("photo.jpg", content, "image/jpeg")
    if style is not None:
        files["style"] = ("painting.png", style, "image/png")
    return client.post("/api/jobs", data={"mode": "optimise", **fields}, files=files)


def _refused(response, status: int, field: str, *phrases: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field, body
    assert body["error"].startswith(f"{field}: "), body
    assert "Traceback" not in body["error"] and "\n" not in body["error"]
    for phrase in phrases:
        assert phrase in body["error"], body


# --- good requests -----------------------------------------------------------------------------


def test_a_job_is_stored_reencoded_under_a_server_id(client: TestClient, tmp_path: Path, photo: bytes,
                                                     painting: bytes) -> None:
    response = _post(client, photo, painting, size="64", iterations="7", style_weight="500", init="content")
    assert response.status_code == 201, response.text
    job = response.json()
    assert store.is_job_id(job["id"]) and response.headers["location"] == f"/api/jobs/{job['id']}"
    assert job["status"] == "queued" and job["position"] == 1 and job["mode"] == "optimise"
    assert job["settings"] == {"size": 64, "iterations": 7, "style_weight": 500.0, "init": "content"}
    assert job["content_name"] == "photo.jpg" and job["style"] == "uploaded: painting.png"
    folder = tmp_path / "data" / "jobs" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == [store.CONTENT, store.STYLE]
    # Re-encoded: PNG files whatever came in, holding the decoded pixels.
    assert (folder / store.CONTENT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = images.load_image(photo)
    assert torch.equal(images.load_image(folder / store.CONTENT), images.load_image(images.to_pil(decoded)))
    assert client.get(f"/api/jobs/{job['id']}/content").content == (folder / store.CONTENT).read_bytes()
    listing = client.get("/api/jobs").json()
    assert [j["id"] for j in listing["jobs"]] == [job["id"]] and listing["waiting"] == 1


def test_example_paintings_and_shipped_styles_are_chosen_by_name(client: TestClient, photo: bytes) -> None:
    styles = {s["name"]: s for s in client.get("/api/styles").json()["styles"]}
    assert styles["starry_night"]["modes"] == ["optimise", "fast"]
    thumbnail = client.get(styles["starry_night"]["thumbnail"])
    assert thumbnail.status_code == 200 and max(images.load_image(thumbnail.content).shape[-2:]) == 256
    job = _post(client, photo, style_name="starry_night").json()
    assert job["style"] == "starry_night" and "style" in job["links"]
    fast = client.post("/api/jobs", data={"mode": "fast", "style_name": "the_scream", "preserve_color": "luminance"},
                       files={"content": ("p.jpg", photo, "image/jpeg")})
    assert fast.status_code == 201, fast.text
    assert fast.json()["settings"] == {"style": "the_scream", "preserve_color": True}
    options = client.get("/api/options").json()
    assert options["defaults"]["optimise"]["iterations"] == TransferConfig().iterations
    assert options["limits"]["max_size"] == 256


def test_fast_mode_takes_an_uploaded_painting_when_an_arbitrary_network_is_installed(
        client: TestClient, tmp_path: Path, photo: bytes, painting: bytes) -> None:
    assert client.get("/api/options").json()["any_painting_fast"] is True
    fast = client.post("/api/jobs", data={"mode": "fast", "strength": "0.5"},
                       files={"content": ("p.jpg", photo), "style": ("my painting.png", painting)})
    assert fast.status_code == 201, fast.text
    job = fast.json()
    assert job["settings"] == {"style": SHIPPED_ARBITRARY, "strength": 0.5}
    assert job["style"] == "uploaded: my painting.png"
    folder = tmp_path / "data" / "jobs" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == [store.CONTENT, store.STYLE]
    bad = client.post("/api/jobs", data={"mode": "fast", "strength": "2"},
                      files={"content": ("p.jpg", photo), "style": ("s.png", painting)})
    _refused(bad, 400, "strength", "must lie in [0, 1]")


def test_output_settings_are_offered_and_the_upload_keeps_its_profile_bits_and_exif(
        client: TestClient, tmp_path: Path, painting: bytes) -> None:
    options = client.get("/api/options").json()
    for mode in ("optimise", "fast"):
        defaults = options["defaults"][mode]
        assert (defaults["output_profile"], defaults["bit_depth"], defaults["quality"]) == ("source", None, 95)
    choices = options["choices"]
    assert choices["output_profile"] == ["source", "srgb"] and choices["bit_depth"] == ["", 8, 16]
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    deep = images.PhotoInfo(exif=exif.tobytes(), bits=16)
    images.save_image(torch.rand(1, 3, 48, 64), tmp_path / "deep.png", bits=16, icc_profile=display_p3(), info=deep)
    job = _post(client, (tmp_path / "deep.png").read_bytes(), painting, quality="80", bit_depth="16",
                output_profile="srgb").json()
    assert job["settings"] == {"quality": 80, "bit_depth": 16, "output_profile": "srgb"}
    pixels, info = images.load_photo(tmp_path / "data" / "jobs" / job["id"] / store.CONTENT)
    assert info.icc_profile == display_p3() and info.bits == 16 and b"Canon" in (info.exif or b"")
    torch.testing.assert_close(pixels, images.load_photo(tmp_path / "deep.png")[0])
    fast = client.post("/api/jobs", data={"mode": "fast", "style_name": "the_scream", "quality": "70"},
                       files={"content": ("p.png", (tmp_path / "deep.png").read_bytes())})
    assert fast.status_code == 201, fast.text
    assert fast.json()["settings"] == {"style": "the_scream", "quality": 70}


def test_the_jpeg_download_keeps_the_results_profile_at_the_jobs_quality(
        client: TestClient, tmp_path: Path, photo: bytes, painting: bytes) -> None:
    job = _post(client, photo, painting, quality="50").json()
    result = tmp_path / "data" / "jobs" / job["id"] / store.RESULT
    images.save_image(torch.rand(1, 3, 48, 64), result, icc_profile=display_p3())
    client.app.state.store.finish(job["id"], store.DONE, result=True)
    download = client.get(f"/api/jobs/{job['id']}/result?format=jpeg")
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    pixels, info = images.load_photo(result)
    images.save_image(pixels, tmp_path / "expected.jpg", quality=50, icc_profile=info.icc_profile, info=info)
    assert download.content == (tmp_path / "expected.jpg").read_bytes()
    assert Image.open(io.BytesIO(download.content)).info["icc_profile"] == display_p3()


def test_options_show_the_shipped_networks_licence(client: TestClient) -> None:
    from impasto.fast.styles import NON_COMMERCIAL

    assert client.get("/api/options").json()["licence"] == NON_COMMERCIAL
    assert "non-commercial research" in NON_COMMERCIAL


def test_without_an_arbitrary_network_fast_mode_refuses_a_painting(
        tmp_path: Path, photo: bytes, painting: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from impasto.fast import styles

    monkeypatch.setattr(styles, "arbitrary_installed", lambda: False)
    with _client(tmp_path) as client:
        assert client.get("/api/options").json()["any_painting_fast"] is False
        fast = client.post("/api/jobs", data={"mode": "fast"},
                           files={"content": ("p.jpg", photo), "style": ("s.png", painting)})
        _refused(fast, 400, "style", "shipped network", "give style_name")


# --- bad uploads -------------------------------------------------------------------------------


def test_not_an_image(client: TestClient, painting: bytes) -> None:
    _refused(_post(client, b"hello, this is text", painting), 400, "content", "not an image")
    _refused(_post(client, b"", painting), 400, "content", "empty")


def test_formats_that_hand_data_to_other_programs_are_not_decoded(client: TestClient, photo: bytes) -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"
    _refused(_post(client, photo, eps), 400, "style", "not an image")


def test_truncated_image(client: TestClient, photo: bytes, painting: bytes) -> None:
    _refused(_post(client, photo[: len(photo) // 2], painting), 400, "content", "truncated")


def test_decompression_bomb(client: TestClient, photo: bytes) -> None:
    _refused(_post(client, photo, _png_header(30_000, 30_000)), 400, "style", "too large to decode safely")


def test_pixel_limit_checked_before_decoding(client: TestClient, photo: bytes) -> None:
    # 1,200 x 1,000 = 1.2 million pixels against this server's limit of one million; the header
    # alone says so (its pixel data would not even decode).
    _refused(_post(client, _png_header(1200, 1000), photo), 400, "content", "more than the limit of 1000000")


def test_oversized_file(client: TestClient, photo: bytes) -> None:
    big = _encode(torch.rand(1, 3, 300, 300, generator=torch.Generator().manual_seed(0)))
    assert len(big) > 200_000
    _refused(_post(client, photo, big), 413, "style", "larger than this server's limit of 200000 bytes")


def test_oversized_request_is_cut_off_from_its_length(client: TestClient) -> None:
    response = client.post("/api/jobs", content=b"x" * 500_000,
                           headers={"content-type": "multipart/form-data; boundary=b"})
    _refused(response, 413, "request", "larger than")


def test_malformed_multipart_is_a_400(client: TestClient) -> None:
    response = client.post("/api/jobs", content=b"--b\r\nnonsense", headers={"content-type": "multipart/form-data"})
    assert response.status_code == 400 and "error" in response.json()


# --- bad fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "phrase"),
    [
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"mode": "paint"}, "mode", "not one of optimise, fast"),
        ({"size": "big"}, "size", "expected an integer"),
        ({"size": "16"}, "size", "at least 32"),
        ({"size": "4096"}, "size", "at most 256 px"),
        ({"iterations": "0"}, "iterations", "at least 1"),
        ({"style_weight": "-1"}, "style_weight", "non-negative"),
        ({"style_weight": "nan"}, "style_weight", "expected a number"),
        ({"init": "sideways"}, "init", "not one of noise, content, style"),
        ({"preserve_color": "sepia"}, "preserve_color", "not one of none, luminance, histogram"),
        ({"optimizer": "sgd"}, "optimizer", "not one of"),
        ({"seed": "-3"}, "seed", "must lie in"),
        ({"device": "cuda"}, "device", "unknown field"),
        ({"output_profile": "/etc/hosts"}, "output_profile", "not one of source, srgb"),
        ({"bit_depth": "12"}, "bit_depth", "8 or 16, got 12"),
        ({"quality": "0"}, "quality", "an integer from 1 to 100"),
        ({"quality": "high"}, "quality", "expected an integer"),
    ],
)
def test_a_bad_setting_names_its_field(client: TestClient, photo: bytes, painting: bytes, fields: dict[str, str],
                                       field: str, phrase: str) -> None:
    _refused(_post(client, photo, painting, **fields), 400, field, phrase)


def test_missing_and_conflicting_inputs(client: TestClient, photo: bytes, painting: bytes) -> None:
    _refused(_post(client, None, painting), 400, "content", "a photo is needed")
    _refused(_post(client, photo), 400, "style", "a painting is needed")
    _refused(_post(client, photo, painting, style_name="starry_night"), 400, "style", "not both")
    _refused(_post(client, photo, style_name="no_such_painting"), 400, "style_name", "not a")
    _refused(client.post("/api/jobs", data={"content": "photo.jpg", "style_name": "x"}), 400, "content", "file upload")
    fast = client.post("/api/jobs", data={"mode": "fast", "style_name": "starry_night", "iterations": "5"},
                       files={"content": ("p.jpg", photo)})
    _refused(fast, 400, "iterations", "not a setting of mode fast")
    twice = client.post("/api/jobs", data={"mode": "optimise", "size": ["64", "128"]},
                        files={"content": ("p.jpg", photo), "style": ("s.png", painting)})
    _refused(twice, 400, "size", "more than once")


# --- jobs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/events", "/preview", "/result", "/content", "/history"])
def test_unknown_job_id(client: TestClient, path: str) -> None:
    for job_id in ("0123456789abcdef", "..%2F..%2Fetc", "not-an-id"):
        response = client.get(f"/api/jobs/{job_id}{path}")
        assert response.status_code == 404, (job_id, path)
        # A path-like id never reaches a route at all; the others are looked up and not found.
        assert response.json()["field"] == (None if "%2F" in job_id else "id")
    _refused(client.post("/api/jobs/0123456789abcdef/cancel"), 404, "id", "no job")


def test_the_queue_answers_when_full(tmp_path: Path, photo: bytes, painting: bytes) -> None:
    with _client(tmp_path, max_queue=2) as client:
        first, second = (_post(client, photo, painting, size="64").json() for _ in range(2))
        assert [first["position"], second["position"]] == [1, 2]
        full = _post(client, photo, painting, size="64")
        _refused(full, 429, "queue", "full (2 jobs waiting, at most 2)")
        assert len(list((tmp_path / "data" / "jobs").iterdir())) == 2
        # Cancelling the first frees a place and moves the second up.
        cancelled = client.post(f"/api/jobs/{first['id']}/cancel").json()
        assert cancelled["status"] == "cancelled" and cancelled["message"] == "cancelled before it started"
        assert client.get(f"/api/jobs/{second['id']}").json()["position"] == 1
        _refused(client.post(f"/api/jobs/{first['id']}/cancel"), 409, "id", "already ended")
        assert _post(client, photo, painting, size="64").status_code == 201


def test_no_result_before_the_job_ends(client: TestClient, photo: bytes, painting: bytes) -> None:
    job = _post(client, photo, painting).json()
    _refused(client.get(f"/api/jobs/{job['id']}/result"), 404, "id", "no result yet")
    _refused(client.get(f"/api/jobs/{job['id']}/preview"), 404, "id", "no preview")
    _refused(client.get(f"/api/jobs/{job['id']}/result?format=gif"), 400, "format", "not one of png, jpeg")
    _refused(client.get("/api/jobs?limit=0"), 400, "limit", "must lie in")


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "impasto studio" in page.text
    for name in ("studio.js", "studio.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/nowhere").json() == {"error": "Not Found", "field": None}
