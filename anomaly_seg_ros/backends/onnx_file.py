"""Read an ONNX file's contract without running it: the image input's shape and its external-data files.

Only the graph is parsed (`load_external_data=False`), so this is cheap even for a model whose weights
are gigabytes, and nothing the size of a declared input is ever allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BackendError

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ['Dim', 'OnnxFileInfo', 'check_onnx_input', 'fixed_batch_error', 'read_onnx_file_info']

#: one input dimension: an int when fixed, the symbolic name (or None) when dynamic
Dim = int | str | None


@dataclass(frozen=True)
class OnnxFileInfo:
    path: Path
    input_names: tuple[str, ...]  # graph inputs that are not initializers (the image, if there is one)
    input_shape: tuple[Dim, ...]  # of the first such input; () when it declares no shape
    external_data: tuple[str, ...]  # locations relative to the file's folder, as written in the file


def fixed_batch_error(path: Path, shape: tuple[Dim, ...] | list[Dim]) -> str | None:
    """The message for an input whose batch dimension is fixed at something other than 1, else None."""
    if shape and isinstance(shape[0], int) and shape[0] != 1:
        return (
            f"{path}: the model's batch dimension is fixed at {shape[0]}; the pipeline runs batch 1: "
            're-export with batch 1 or a dynamic batch'
        )
    return None


def read_onnx_file_info(path: Path) -> OnnxFileInfo:
    """Parse the graph of `path`; an unreadable or non-ONNX file raises BackendError naming it."""
    try:
        import onnx
    except ImportError:
        raise BackendError(f'{path}: reading ONNX files needs the onnx package (pip install onnx)') from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf and onnx raise several types; the text says why
        raise BackendError(f'{path}: not a readable ONNX file: {type(e).__name__}: {str(e)[:300]}') from None
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    shape: tuple[Dim, ...] = ()
    if inputs and inputs[0].type.HasField('tensor_type') and inputs[0].type.tensor_type.HasField('shape'):
        shape = tuple(
            d.dim_value if d.HasField('dim_value') else (d.dim_param or None)
            for d in inputs[0].type.tensor_type.shape.dim
        )
    tensors = list(graph.initializer)
    for node in graph.node:
        tensors += [a.t for a in node.attribute if a.HasField('t')]
    locations = {
        e.value
        for t in tensors
        if t.data_location == onnx.TensorProto.EXTERNAL
        for e in t.external_data
        if e.key == 'location'
    }
    return OnnxFileInfo(path, tuple(i.name for i in inputs), shape, tuple(sorted(locations)))


def check_onnx_input(model: ModelConfig) -> OnnxFileInfo:
    """A model folder's ONNX file against its model.yaml, from the graph alone (for a backend's start-up, so a
    hand-written folder fails before the first frame): one NCHW image input, batch 1 or dynamic, 3 channels,
    a fixed height/width equal to the model.yaml input size, and every external-data file in place.
    BackendError names the file and the mismatch."""
    info = read_onnx_file_info(model.weights)
    path, shape = model.weights, info.input_shape
    if len(info.input_names) != 1:
        raise BackendError(f'{path}: expected one input (the image), found {list(info.input_names)}')
    if len(shape) != 4:
        raise BackendError(f'{path}: input must be NCHW (rank 4), found shape {list(shape)}')
    batch_error = fixed_batch_error(path, shape)
    if batch_error:
        raise BackendError(batch_error)
    if isinstance(shape[1], int) and shape[1] != 3:
        raise BackendError(f'{path}: input must have 3 channels, found shape {list(shape)}')
    want = (model.input.height, model.input.width)
    for got, size, side in zip(shape[2:], want, ('height', 'width'), strict=True):
        if isinstance(got, int) and got != size:
            raise BackendError(
                f'{path}: the input {side} is fixed at {got}, {model.directory / "model.yaml"} says {size} '
                f'(input {model.input.width}x{model.input.height})'
            )
    for rel in info.external_data:
        if not (path.parent / rel).is_file():
            raise BackendError(f'{path}: external data file {rel!r} is missing (expected {path.parent / rel})')
    return info
