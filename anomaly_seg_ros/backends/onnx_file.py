"""Read an ONNX file's contract without running it: the image input's shape and its external-data files.

Only the graph is parsed (`load_external_data=False`), so this is cheap even for a model whose weights
are gigabytes, and nothing the size of a declared input is ever allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendError

__all__ = ['Dim', 'OnnxFileInfo', 'fixed_batch_error', 'read_onnx_file_info']

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
