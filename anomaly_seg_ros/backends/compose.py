"""An imported ONNX net inside the one fused pipeline graph, and its feature taps as extra graph outputs.

`expose_taps` turns the tensor names a model folder declares under `taps:` into graph outputs named by the tap
(an Identity node renames a tensor to its tap's name). `compose_fused` builds the fused graph of an imported
net the way the torch path traces its own nets, except that the user's graph is not re-traced: the parts
around it are exported from torch and merged around it with `onnx.compose`:

    frame uint8 1xHxWx3 -> [pre: graph.FrameToInput] -> image -> [net/: the user's graph] -> logits, taps
        -> [post: graph.MapsFromOutputs] -> labels, score, aux

- the user's names get the prefix `net/` and the torch parts' inner names `pre/` and `post/`, so nothing
  collides; the graph's own input and outputs keep their names ('frame', 'labels', 'score', aux names);
- the user's dynamic input dims (batch 'N', a dynamic height or width) are fixed at 1 x 3 x the model.yaml
  input size, so the fused graph has fixed shapes throughout (the fastest TensorRT engines);
- a user graph below the export opset (17) is converted up with onnx.version_converter; a higher one has the
  torch parts exported at its opset instead; the IR version is the highest of the three parts;
- weights the user keeps in external-data files are read from the model folder and written into the cached
  graph, inline when the whole graph stays under ~1.8 GB, else into one external file beside it.
"""

from __future__ import annotations

import difflib
import io
import os
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import BackendError, ConfigError
from ..scoring import IMAGE, LOGITS, Scorer
from .export import EXPORT_LOCK, OPSET, publish
from .onnx_file import check_onnx_input

if TYPE_CHECKING:
    import onnx

    from ..graph import PipelineGraph
    from .source import GraphSource

__all__ = ['compose_fused', 'expose_taps', 'load_graph', 'tensor_candidates']

#: above this the composed model keeps its weights in an external file (protobuf cannot serialise 2 GB)
INLINE_LIMIT = 1_800_000_000
NET_PREFIX, PRE_PREFIX, POST_PREFIX = 'net/', 'pre/', 'post/'
#: node types whose tensors make useful taps, listed when a tap names a tensor the graph lacks
_FEATURE_OPS = ('Conv', 'BatchNormalization', 'Add', 'Gemm', 'MatMul')


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise BackendError('imported ONNX nets need the onnx package (pip install onnx)') from None
    return onnx


def load_graph(path: Path) -> onnx.ModelProto:
    """The graph of an ONNX file without its external data (cheap for any size); BackendError names the file."""
    onnx = _onnx()
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf and onnx raise several types; the text says why
        raise BackendError(f'{path}: not a readable ONNX file: {type(e).__name__}: {str(e)[:300]}') from None


def image_input(model: onnx.ModelProto) -> str:
    """Name of the graph's one real input (initializers listed as inputs by old exporters do not count)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise BackendError(f'expected one graph input (the image), found {inputs}')
    return inputs[0]


def tensor_candidates(model: onnx.ModelProto, near: str = '', limit: int = 8) -> str:
    """Tensor names worth tapping, for error messages: names close to `near` first, then the inputs of Relu
    nodes (features before their ReLU, as the Fishyscapes density method takes them) and outputs of
    Conv/BatchNormalization/Add nodes."""
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type == 'Relu':
            names.append(node.input[0])
    for node in model.graph.node:
        if node.op_type in _FEATURE_OPS:
            names.extend(o for o in node.output if o)
    produced = [o for node in model.graph.node for o in node.output if o]
    close = difflib.get_close_matches(near, produced, n=3, cutoff=0.6) if near else []
    picked = list(dict.fromkeys([*close, *names]))
    more = f' ... (+{len(picked) - limit} more)' if len(picked) > limit else ''
    return ', '.join(picked[:limit]) + more if picked else '(the graph has no nodes)'


def _tensor_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Types (dtype and shape) of the graph's tensors as far as shape inference can tell."""
    onnx = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - custom ops or odd graphs: fall back to what the file declares
        inferred = model
    g = inferred.graph
    return {vi.name: vi.type for vi in (*g.input, *g.value_info, *g.output)}


def expose_taps(model: onnx.ModelProto, taps: dict[str, str], source: str | Path = '') -> onnx.ModelProto:
    """A copy of `model` with every tap (NAME -> tensor name) as an extra graph output called NAME.

    An unknown tensor name raises ConfigError naming the tap, the tensor and the file, and listing tensor names
    that exist."""
    onnx = _onnx()
    out = onnx.ModelProto()
    out.CopyFrom(model)
    if not taps:
        return out
    g = out.graph
    produced = {o for node in g.node for o in node.output if o} | {i.name for i in g.input}
    taken = produced | {t.name for t in g.initializer}
    outputs = {o.name for o in g.output}
    where = f' in {source}' if source else ''
    types = _tensor_types(out)
    for name, tensor in taps.items():
        if tensor not in produced:
            raise ConfigError(
                f'tap {name!r}: no tensor {tensor!r}{where}; tensor names there look like: '
                f'{tensor_candidates(model, tensor)}'
            )
        if name in outputs:
            if name == tensor:
                continue  # already a graph output under the tap's name
            raise ConfigError(f'tap {name!r}: the graph{where} already has an output {name!r}; rename the tap')
        if name != tensor:
            if name in taken:
                raise ConfigError(
                    f'tap {name!r}: the graph{where} already has a tensor called {name!r}; rename the tap'
                )
            g.node.append(onnx.helper.make_node('Identity', [tensor], [name], name=f'expose_tap/{name}'))
            taken.add(name)
        vi = onnx.ValueInfoProto()
        vi.name = name
        if tensor in types:
            vi.type.CopyFrom(types[tensor])
        else:  # shape inference could not see it (a custom op upstream): declare a float tensor of any shape
            vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        g.output.append(vi)
        outputs.add(name)
    return out


def _default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), 0)


def _prepare_user(
    source: GraphSource, user: onnx.ModelProto, taps: tuple[str, ...], opset: int
) -> tuple[onnx.ModelProto, str, str]:
    """The user's graph, ready to merge: taps exposed, only logits and the taps as outputs, the input fixed at
    1x3xhxw, at `opset`. Returns (model, input name, logits name)."""
    onnx = _onnx()
    cfg = source.model
    try:
        input_name = image_input(user)
    except BackendError as e:
        raise BackendError(f'{cfg.weights}: {e}') from None
    if not user.graph.output:
        raise BackendError(f'{cfg.weights}: the graph has no outputs')
    logits_name = user.graph.output[0].name
    user = expose_taps(user, {t: cfg.taps[t] for t in taps}, cfg.weights)
    g = user.graph
    keep = [logits_name, *taps]
    by_name = {o.name: o for o in g.output}
    kept = [by_name[n] for n in keep]
    del g.output[:]
    g.output.extend(kept)  # nodes feeding only dropped outputs stay; ONNX Runtime and TensorRT prune them
    # shapes declared or inferred for a dynamic input ('N', ...) are dropped and inferred again once it is fixed
    del g.value_info[:]
    for o in g.output:
        o.type.tensor_type.ClearField('shape')
    initializers = {t.name for t in g.initializer}
    real = [i for i in g.input if i.name not in initializers]
    del g.input[:]
    g.input.extend(real)
    shape = real[0].type.tensor_type.shape
    del shape.dim[:]  # check_onnx_input found it NCHW with nothing fixed at another value
    for v in (1, 3, cfg.input.height, cfg.input.width):
        shape.dim.add().dim_value = v
    have = _default_opset(user)
    if have < opset:
        try:
            user = onnx.version_converter.convert_version(user, opset)
        except Exception as e:  # noqa: BLE001 - the converter raises RuntimeError and friends per adapter
            raise BackendError(
                f'{cfg.weights}: cannot convert the graph from opset {have} to {opset} for the fused graph '
                f'({type(e).__name__}: {str(e)[:300]}); re-export the net at opset {opset} or later'
            ) from None
    return user, input_name, logits_name


def _trace(
    module: nn.Module, examples: tuple[torch.Tensor, ...], inputs: list[str], outputs: list[str], opset: int
) -> onnx.ModelProto:
    """A torch part of the fused graph as an in-memory ONNX model, at the fixed shapes of `examples`."""
    onnx = _onnx()
    f = io.BytesIO()
    try:
        with EXPORT_LOCK, warnings.catch_warnings():  # torch's exporter keeps global state
            warnings.simplefilter('ignore')
            torch.onnx.export(
                module.eval(),
                examples,
                f,  # type: ignore[arg-type]  # the TorchScript exporter writes to a file object too
                opset_version=opset,
                dynamo=False,
                input_names=inputs,
                output_names=outputs,
            )
    except Exception as e:  # noqa: BLE001 - the exporter raises many types; the reason is in the text
        what = f'{type(module).__name__} at opset {opset}'
        raise BackendError(f'ONNX export of {what} failed: {type(e).__name__}: {str(e)[-400:]}') from None
    return onnx.load_from_string(f.getvalue())


class _Positional(nn.Module):
    """MapsFromOutputs takes a dict; the exporter feeds positional tensors, named here in graph-input order."""

    def __init__(self, post: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.post = post
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.post(dict(zip(self.names, tensors, strict=True)))  # type: ignore[no-any-return]


def _needs(graph: PipelineGraph) -> tuple[str, ...]:
    """Net outputs the post part reads: logits, the taps its scorers need, and the image if one needs it."""
    scorers: list[Scorer] = [graph.post.scorer, *(s for s in graph.post.aux.values() if isinstance(s, Scorer))]
    needs = [LOGITS]
    for s in scorers:
        needs += [n for n in s.needs if n not in needs]
    return tuple(needs)


def compose_fused(source: GraphSource, frame_hw: tuple[int, int], path: Path) -> Path:
    """Write the fused graph (frame -> labels, score, aux) of an imported ONNX net at one camera size."""
    onnx = _onnx()
    cfg = source.model
    check_onnx_input(cfg)
    graph = source.graph(frame_hw).cpu()
    needs = _needs(graph)
    taps = tuple(n for n in needs if n not in (LOGITS, IMAGE))
    user = load_graph(cfg.weights)
    opset = max(OPSET, _default_opset(user))
    user, input_name, logits_name = _prepare_user(source, user, taps, opset)
    frame = torch.zeros(1, *frame_hw, 3, dtype=torch.uint8)
    with torch.no_grad():
        image = graph.pre(frame)
        net_out = dict(graph.net(image))
    net_out[IMAGE] = image
    pre = _trace(graph.pre, (frame,), ['frame'], ['image'], opset)
    post_inputs = needs
    examples = tuple(net_out[n].clone() for n in post_inputs)
    post = _trace(_Positional(graph.post, post_inputs), examples, list(post_inputs), list(source.output_names), opset)

    ir_version = max(user.ir_version, pre.ir_version, post.ir_version)
    pre = onnx.compose.add_prefix(pre, PRE_PREFIX, rename_inputs=False, rename_outputs=False)
    post = onnx.compose.add_prefix(post, POST_PREFIX, rename_inputs=False, rename_outputs=False)
    user = onnx.compose.add_prefix(user, NET_PREFIX)
    net_outputs = [NET_PREFIX + logits_name, *(NET_PREFIX + t for t in taps)]
    try:
        # merge_graphs, not merge_models: the latter checks the in-memory model, which fails on external data
        # not loaded yet; the written file is checked (by path) by export.check_onnx
        first = onnx.compose.merge_graphs(
            pre.graph,
            user.graph,
            io_map=[('image', NET_PREFIX + input_name)],
            outputs=[*(['image'] if IMAGE in needs else []), *net_outputs],
        )
        io_map = [(NET_PREFIX + logits_name, LOGITS), *((NET_PREFIX + t, t) for t in taps)]
        if IMAGE in needs:
            io_map.append(('image', IMAGE))
        fused_graph = onnx.compose.merge_graphs(first, post.graph, io_map=io_map, name=f'{cfg.name}_fused')
    except ValueError as e:
        raise BackendError(f'{cfg.weights}: cannot merge the net into the fused graph: {e}') from None
    opsets: dict[str, int] = {}
    for m in (pre, user, post):
        for o in m.opset_import:
            domain = '' if o.domain == 'ai.onnx' else o.domain
            opsets[domain] = max(opsets.get(domain, 0), o.version)
    fused = onnx.helper.make_model(
        fused_graph,
        opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        ir_version=ir_version,
        producer_name='anomaly_seg_ros',
        doc_string=f'{cfg.name}: frame -> labels, score; the net from {cfg.weights.name} fused by onnx.compose',
    )
    fused.functions.extend(user.functions)
    try:  # fixed shapes throughout, now that the input is fixed (TensorRT builds from them)
        fused = onnx.shape_inference.infer_shapes(fused, data_prop=True)
    except Exception:  # noqa: BLE001 - a custom op can stop inference; the graph is valid without value_info
        pass
    names = tuple(o.name for o in fused.graph.output)
    if [i.name for i in fused.graph.input] != ['frame'] or names != source.output_names:
        raise BackendError(
            f'{cfg.weights}: the fused graph came out with inputs {[i.name for i in fused.graph.input]} and '
            f'outputs {list(names)}; expected frame -> {list(source.output_names)}'
        )
    _write(fused, cfg.weights.parent, path)
    return path


def _all_tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """Initializers and tensor attributes of every node, subgraphs (If/Loop bodies) included."""
    tensors = list(graph.initializer)
    for node in graph.node:
        for a in node.attribute:
            if a.HasField('t'):
                tensors.append(a.t)
            tensors.extend(a.tensors)
            for sub in (*([a.g] if a.HasField('g') else []), *a.graphs):
                tensors.extend(_all_tensors(sub))
    return tensors


def _external_bytes(model: onnx.ModelProto, folder: Path) -> int:
    onnx = _onnx()
    total = 0
    for t in _all_tensors(model.graph):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        if 'length' in info:
            total += int(info['length'])
        else:
            total += max(0, (folder / info['location']).stat().st_size - int(info.get('offset', 0)))
    return total


def _write(model: onnx.ModelProto, weights_dir: Path, path: Path) -> None:
    """Bring in the user's external data and publish the model atomically (a tmp file, then export.publish)."""
    onnx = _onnx()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = f'{os.getpid()}.{uuid.uuid4().hex[:8]}'
    tmp = path.with_name(f'{path.stem}.{token}.tmp.onnx')
    # unique per writer, like the model's tmp file: two exporters never write into one data file
    data = path.with_name(f'{path.stem}.{uuid.uuid4().hex[:8]}.data')
    try:
        size = model.ByteSize() + _external_bytes(model, weights_dir)
        onnx.external_data_helper.load_external_data_for_model(model, str(weights_dir))
        if size > INLINE_LIMIT:
            onnx.save_model(
                model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name,
                size_threshold=1024,
            )  # fmt: skip
        else:
            onnx.save_model(model, str(tmp))
        publish(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        data.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise BackendError(f'{path}: cannot write the fused graph: {e.strerror or e}') from None
        raise
