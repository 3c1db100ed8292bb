"""The back-ends that run the fast style networks, and their ONNX export.

Every back-end is a function from RGB images in [0, 1], a float32 tensor of shape (B, 3, H, W),
to the stylised images in the same convention, so that their outputs can be compared:

* ``torch`` and ``torch-bf16``: PyTorch in float32, or with the whole network in bfloat16
  (fast on CPUs with native bf16, see ``impasto.runtime.cpu_has_native_bf16``);
* ``onnxruntime``: the exported graph on onnxruntime's CPU provider;
* ``opencv``: the exported graph on OpenCV's dnn module, fed through ``cv2.dnn.blobFromImage``.

The graph has dynamic batch, height and width by default: the network's padding to a multiple
of 4 and the crop back are part of it, and both onnxruntime and OpenCV run it at any size
(tested with onnxruntime 1.32 and OpenCV 5.0). ``height``/``width`` fix the input size for
runtimes that need static shapes. onnx and OpenCV are optional (``pip install impasto[export]``);
they and onnxruntime are imported here only where used.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from impasto import __version__, storage
from impasto.config import Backend as BackendName
from impasto.config import choices
from impasto.errors import InputError
from impasto.fast import graph
from impasto.fast.conditional import ConditionalNet
from impasto.fast.model import FastModel, network_of
from impasto.fast.network import Architecture, TransformNet

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from impasto.fast.multistyle.model import MultiStyleModel

BACKENDS = choices(BackendName)
# A back-end: RGB images in [0, 1], (B, 3, H, W) float32, to the stylised images alike.
Backend = Callable[[Tensor], Tensor]
INPUT, OUTPUT = graph.IMAGE, graph.OUTPUT
OPSET = 17
ModelSource = FastModel | TransformNet | bytes | str | os.PathLike[str]


# The optional modules each back-end imports (the ONNX ones export the network with onnx first).
NEEDS: dict[str, tuple[str, ...]] = {"auto": (), "torch": (), "torch-bf16": (),
                                     "onnxruntime": ("onnx", "onnxruntime"), "opencv": ("onnx", "cv2")}


def missing_modules(backend: str) -> list[str]:
    """The modules ``backend`` needs that are not installed (found, not imported)."""
    import importlib.util

    return [module for module in NEEDS[backend] if importlib.util.find_spec(module) is None]


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        package = {"cv2": "opencv-python-headless"}.get(module, module)
        raise InputError(f"{module} is not installed: pip install 'impasto[export]' (or {package})") from None


def export_onnx(
    model: FastModel | TransformNet,
    path: str | os.PathLike[str] | None = None,
    *,
    height: int | None = None,
    width: int | None = None,
    opset: int = OPSET,
) -> bytes:
    """The network as an ONNX graph (bytes; also written to ``path`` if given).

    Dynamic batch/height/width unless ``height`` and ``width`` are given. Uses the public
    ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``): the
    torch.export-based default needs onnxscript, and the traced graph is what OpenCV reads.
    """
    if (height is None) != (width is None):
        raise InputError("give both --input-height and --input-width for a fixed-size graph, or neither")
    network = network_of(model).float().cpu().eval()
    least = network.arch.min_side
    if height is not None and width is not None and min(height, width) < least:
        raise InputError(f"fixed size {width}x{height}: both sides must be at least {least} px")
    _require("onnx")
    # An odd example size: nothing in the trace may depend on the sides being multiples of 8.
    example = torch.rand(1, 3, height or 67, width or 93)
    dynamic = None if height else {INPUT: {0: "batch", 2: "height", 3: "width"},
                                   OUTPUT: {0: "batch", 2: "height", 3: "width"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter's deprecation notice and its remarks on instance norm's training
        # flag and on slices it cannot constant-fold say nothing about this graph's correctness.
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example,), buffer, dynamo=False, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes=dynamic, opset_version=opset)
    data = _with_metadata(buffer.getvalue(), network.arch, **({"style": model.style}
                                                              if isinstance(model, FastModel) else {}))
    if path is not None:
        out = storage.check_output_path(path, suffixes=(".onnx",))
        try:
            storage.write_bytes(out, data)
        except OSError as exc:
            raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return data


def _with_metadata(data: bytes, arch: Architecture, **entries: str) -> bytes:
    """The graph ``data`` with impasto's metadata, and ``entries`` (which may replace it)."""
    onnx = _require("onnx")
    proto = onnx.load_from_string(data)
    meta = {
        "producer": f"impasto {__version__}",
        "convention": "RGB float32 in [0, 1], NCHW, in and out",
        "architecture": f"width {arch.width}, {arch.blocks} residual blocks",
        **entries,
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def _onnx_bytes(source: ModelSource) -> bytes:
    if isinstance(source, (FastModel, TransformNet)):
        return export_onnx(source)
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"{os.fspath(source)}: cannot read ONNX file ({exc.strerror or exc})") from None


def torch_backend(model: FastModel | TransformNet, device: str | torch.device = "cpu") -> Backend:
    """The network with PyTorch in float32."""
    network = network_of(model).to(device).eval()

    def run(image: Tensor) -> Tensor:
        with torch.inference_mode():
            return network(image.to(device, torch.float32)).float().cpu()

    return run


def torch_bf16_backend(model: FastModel | TransformNet) -> Backend:
    """The whole network in bfloat16 (weights and activations), output widened to float32."""
    # A copy: converting in place would change the caller's float32 network. (A deep copy, so
    # that any network with the TransformNet interface, such as conditional.BoundNet, converts.)
    network = copy.deepcopy(network_of(model)).to(torch.bfloat16)
    network.eval().to(memory_format=torch.channels_last)

    def run(image: Tensor) -> Tensor:
        with torch.inference_mode():
            x = image.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
            return network(x).float()

    return run


def onnxruntime_backend(source: ModelSource, threads: int | None = None) -> Backend:
    """The ONNX graph on onnxruntime's CPU execution provider."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(_onnx_bytes(source), options, providers=["CPUExecutionProvider"])

    def run(image: Tensor) -> Tensor:
        x = image.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(session.run([OUTPUT], {INPUT: x})[0])

    return run


class OpenCVStyler:
    """The ONNX graph on OpenCV's dnn module.

    ``stylize_bgr`` takes and returns OpenCV's own 8-bit BGR frames (``blobFromImage`` scales by
    1/255 and swaps to RGB; the network needs no mean subtraction, unlike the Torch models of
    Johnson et al., which expect the Caffe mean removed). Calling the object takes and returns
    RGB tensors in [0, 1], the convention of the other back-ends.
    """

    def __init__(self, source: ModelSource) -> None:
        self.cv2 = _require("cv2")
        self.net = self.cv2.dnn.readNetFromONNX(np.frombuffer(_onnx_bytes(source), dtype=np.uint8))

    def forward(self, blob: NDArray[np.float32]) -> NDArray[np.float32]:
        self.net.setInput(blob)
        return np.asarray(self.net.forward(), dtype=np.float32)

    def stylize_bgr(self, frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        blob = self.cv2.dnn.blobFromImage(frame, scalefactor=1.0 / 255.0, swapRB=True)
        rgb = self.forward(blob)[0]
        bgr = rgb[::-1].transpose(1, 2, 0)
        return np.ascontiguousarray(np.clip(bgr * 255.0 + 0.5, 0, 255).astype(np.uint8))

    def __call__(self, image: Tensor) -> Tensor:
        hwc = [np.ascontiguousarray(x.permute(1, 2, 0).numpy()) for x in image.detach().float().cpu()]
        blob = self.cv2.dnn.blobFromImages(hwc, scalefactor=1.0, swapRB=False)
        return torch.from_numpy(self.forward(blob))


def make_backend(name: str, model: FastModel | TransformNet, onnx: bytes | None = None) -> Backend:
    """A back-end by name; ``onnx`` reuses an exported graph for the ONNX ones. "auto" is torch
    here: its other choice, a shipped style's styles graph, runs photos in ``fast.apply``."""
    if name in ("auto", "torch"):
        return torch_backend(model)
    if name == "torch-bf16":
        return torch_bf16_backend(model)
    if name == "onnxruntime":
        return onnxruntime_backend(onnx or model)
    if name == "opencv":
        return OpenCVStyler(onnx or model)
    raise InputError(f"--backend: {name!r} is not one of {', '.join(BACKENDS)}")


GAMMABETA = graph.VECTOR


def export_styles_onnx(model: MultiStyleModel, path: str | os.PathLike[str] | None = None,
                       source_sha256: str | None = None) -> bytes:
    """A multi-style network as one graph with all its styles (``fast.graph``): the conditional
    transformer with its two inputs, and every style's name and vector in the metadata, with the
    SHA-256 of the model file it came from."""
    with torch.no_grad():
        table = model.network.table().double().cpu().numpy()
    data = _with_metadata(export_conditional_onnx(model.network.transformer), model.network.arch,
                          convention=f"RGB float32 in [0, 1], NCHW, in and out; {GAMMABETA}: one style vector a "
                          "batch or an image", **graph.metadata(model.names, table, source_sha256))
    if path is not None:
        storage.write_bytes(storage.check_output_path(path, suffixes=(".onnx",)), data)
    return data


def export_conditional_onnx(network: ConditionalNet, path: str | os.PathLike[str] | None = None,
                            opset: int = OPSET) -> bytes:
    """The conditional transformer as an ONNX graph with two inputs: the image (dynamic batch,
    height and width) and its γ/β, (1 or batch, ``code_size``), so that one graph serves every
    style code (``fast.arbitrary.model.bind`` bakes one code in with ``export_onnx`` instead)."""
    _require("onnx")
    net = copy.deepcopy(network).float().cpu().eval()
    example = (torch.rand(1, 3, 67, 93), net.identity())
    dynamic = {INPUT: {0: "batch", 2: "height", 3: "width"}, GAMMABETA: {0: "styles"},
               OUTPUT: {0: "batch", 2: "height", 3: "width"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, buffer, dynamo=False, input_names=[INPUT, GAMMABETA], output_names=[OUTPUT],
                          dynamic_axes=dynamic, opset_version=opset)
    data = buffer.getvalue()
    if path is not None:
        storage.write_bytes(storage.check_output_path(path, suffixes=(".onnx",)), data)
    return data
