"""Imported ONNX nets: tensor-name taps, the eager reference (OnnxNet) and the one fused graph by onnx.compose.

The ONNX file is made here from the tiny icnet (so the torch net's own hooks give the expected tap values),
imported as a model folder, then run eagerly (torch backend: torch pre/post around ONNX Runtime) and fused
(onnxruntime backend: one graph frame -> labels, score, aux).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from anomaly_seg_ros.backends import GraphSource, load_torch_net
from anomaly_seg_ros.cli import main as cli_main
from anomaly_seg_ros.config import ModelConfig, load_model_config
from anomaly_seg_ros.errors import BackendError, ConfigError
from anomaly_seg_ros.importer import ImportOptions, import_model
from anomaly_seg_ros.pipeline import Pipeline
from anomaly_seg_ros.scoring import SCORERS, Scorer, ScorerConfig, build_scorer, register_scorer

onnx = pytest.importorskip('onnx', reason='onnx not installed')
pytest.importorskip('onnxruntime', reason='onnxruntime not installed')

from anomaly_seg_ros.backends import compose  # noqa: E402 - needs onnx
from anomaly_seg_ros.backends.onnx_net import OnnxNet  # noqa: E402 - needs onnxruntime

H, W = 64, 128  # tiny_model's input
#: the pre-ReLU features of the head (BatchNorm folded into the conv by the exporter): torch module head.0.1
HEAD_TENSOR = '/head/head.0/head.0.0/Conv_output_0'
CAMERAS = ((128, 256), (100, 150))  # an integer multiple of the input, and not one
LABEL_AGREEMENT, SCORE_ATOL = 0.999, 1e-3


class _TapScorer(Scorer):
    """Reads a tap: the mean squared head feature (at the features' own size; the graph upsamples it), scaled
    up because random-weight features are ~1e-2, where a 1e-3 tolerance would not see a wrong tap."""

    name = '_tap_test'
    needs = ('logits', 'features')
    score_range = (0.0, math.inf)

    @classmethod
    def from_config(cls, model: ModelConfig, cfg: ScorerConfig) -> Scorer:
        cls.check_config(cfg)
        return cls(model.num_classes, model.void_channel)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return outputs['features'].pow(2).mean(dim=1) * 1e4


class _ImageScorer(Scorer):
    """Reads the normalised net input: an aux map that makes the fused graph feed 'image' to its post part."""

    name = '_image_test'
    needs = ('image',)
    score_range = (0.0, math.inf)

    @classmethod
    def from_config(cls, model: ModelConfig, cfg: ScorerConfig) -> Scorer:
        cls.check_config(cfg)
        return cls(model.num_classes, model.void_channel)

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return outputs['image'].abs().mean(dim=1)


@pytest.fixture(scope='module', autouse=True)
def _test_scorers() -> Iterator[None]:
    register_scorer(_TapScorer)
    register_scorer(_ImageScorer)
    yield
    SCORERS.pop('_tap_test')
    SCORERS.pop('_image_test')


def _export(net: torch.nn.Module, path: Path, opset: int = 17, dynamic: bool = True) -> Path:
    """The net as a user's ONNX file; `dynamic`: batch, height and width declared dynamic (N, H, W)."""
    axes = {'image': {0: 'N'}, 'logits': {0: 'N'}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            net.eval(), (torch.zeros(1, 3, H, W),), str(path), opset_version=opset, dynamo=False,
            input_names=['image'], output_names=['logits'], dynamic_axes=axes,
        )  # fmt: skip
    if dynamic:  # the tracer cannot keep H and W symbolic through adaptive pooling: declare them so afterwards
        model = onnx.load(str(path))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        for d, name in ((dims[2], 'H'), (dims[3], 'W')):
            d.Clear()
            d.dim_param = name
        onnx.save(model, str(path))
    return path


@pytest.fixture(scope='module')
def net(tiny_model: Path) -> torch.nn.Module:
    return load_torch_net(load_model_config(tiny_model))


@pytest.fixture(scope='module')
def user_onnx(net: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's file: dynamic batch, height and width, as many public exports are."""
    return _export(net, tmp_path_factory.mktemp('user') / 'icnet.onnx')


@pytest.fixture(scope='module')
def folder(user_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    opts = ImportOptions(name='icnet_onnx', input_size=(W, H), taps={'features': HEAD_TENSOR})
    return import_model(user_onnx, 'onnx', opts, tmp_path_factory.mktemp('models'))


def _frame(hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (hw[0] // 4 + 1, hw[1] // 4 + 1, 3), dtype=np.uint8)
    # spatially correlated like a camera frame (pure noise makes every pixel a near-tie between classes)
    return cv2.resize(small, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def _assert_parity(ref: Pipeline, fused: Pipeline, hw: tuple[int, int]) -> None:
    frame = _frame(hw, seed=hw[0])
    a, b = ref(frame), fused(frame)
    assert b.labels.shape == hw and b.labels.dtype == np.uint8 and b.score.dtype == np.float32
    agree = float((a.labels == b.labels).mean())
    assert agree >= LABEL_AGREEMENT, f'{hw}: labels agree on {agree:.5f}'
    np.testing.assert_allclose(b.score, a.score, atol=SCORE_ATOL, rtol=0)
    assert a.aux.keys() == b.aux.keys()
    for name in a.aux:
        np.testing.assert_allclose(b.aux[name], a.aux[name], atol=SCORE_ATOL, rtol=0)


def test_the_tap_names_a_real_tensor_of_the_exported_net(user_onnx: Path) -> None:
    """HEAD_TENSOR (also in README's example) is the input of the head's ReLU in the file torch writes."""
    g = onnx.load(str(user_onnx), load_external_data=False).graph
    relu_inputs = [n.input[0] for n in g.node if n.op_type == 'Relu' and n.output[0].startswith('/head/')]
    assert relu_inputs == [HEAD_TENSOR]


def test_import_writes_the_tap_into_model_yaml(folder: Path) -> None:
    raw = yaml.safe_load((folder / 'model.yaml').read_text())
    assert raw['taps'] == {'features': HEAD_TENSOR}
    assert load_model_config(folder).taps == {'features': HEAD_TENSOR}


def test_onnx_net_returns_logits_and_the_tap_as_the_torch_net_computes_them(folder: Path, net: torch.nn.Module) -> None:
    cfg = load_model_config(folder)
    onnx_net = OnnxNet(cfg)
    assert next(iter(onnx_net.parameters()), None) is None  # probe_logits_hw puts it on the CPU
    feats: list[torch.Tensor] = []
    hook = dict(net.named_modules())['head.0.1'].register_forward_hook(lambda m, i, o: feats.append(o.clone()))
    x = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    try:
        with torch.inference_mode():
            want_logits = net(x)
            got = onnx_net(x)
    finally:
        hook.remove()
    assert set(got) == {'logits', 'features'}
    torch.testing.assert_close(got['logits'], want_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got['features'], feats[0], atol=1e-5, rtol=1e-3)  # features are ~1e-2
    assert GraphSource(cfg, build_scorer('entropy', cfg)).logits_hw() == tuple(want_logits.shape[2:])


def test_fused_graph_is_one_checked_graph_from_frame_to_labels_and_score(folder: Path) -> None:
    cfg = load_model_config(folder)
    source = GraphSource(cfg, build_scorer('_tap_test', cfg), aux=('_image_test',))
    path = source.onnx((100, 150))
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    g = model.graph
    assert [i.name for i in g.input] == ['frame']
    frame_in = g.input[0].type.tensor_type
    assert frame_in.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in frame_in.shape.dim] == [1, 100, 150, 3]
    assert [o.name for o in g.output] == ['labels', 'score', '_image_test']
    assert {o.domain: o.version for o in model.opset_import}[''] >= 17
    # the user's dynamic N x 3 x H x W input is fixed at 1 x 3 x the model.yaml size inside the fused graph
    params = {d.dim_param for vi in g.value_info for d in vi.type.tensor_type.shape.dim}
    assert not params & {'N', 'H', 'W'}  # (shape inference's own unk__ dims on index arithmetic may remain)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in g.value_info}
    assert shapes['net/logits'] == [1, 19, H, W]
    assert shapes['net/features'][:2] == [1, 16] and min(shapes['net/features']) > 0  # the tap, fed to post
    assert any(n.op_type == 'Identity' and n.output[0] == 'net/features' for n in g.node)


@pytest.mark.parametrize('hw', CAMERAS)
@pytest.mark.parametrize('scorer', ['entropy', 'max_logit'])
def test_fused_onnxruntime_matches_the_eager_reference(folder: Path, scorer: str, hw: tuple[int, int]) -> None:
    ref = Pipeline.from_model(folder, scorer=scorer, backend='torch')
    fused = Pipeline.from_model(folder, scorer=scorer, backend='onnxruntime')
    _assert_parity(ref, fused, hw)


def test_tapped_scorer_and_image_aux_run_through_the_fused_graph(folder: Path) -> None:
    aux = ('_image_test',)
    ref = Pipeline.from_model(folder, scorer='_tap_test', backend='torch', aux=aux)
    fused = Pipeline.from_model(folder, scorer='_tap_test', backend='onnxruntime', aux=aux)
    for hw in CAMERAS:
        _assert_parity(ref, fused, hw)
    assert float(ref(_frame(CAMERAS[1])).score.mean()) > 0.1  # the tap carries signal well above the tolerance


def test_unknown_tap_tensor_fails_the_import_naming_it(user_onnx: Path, tmp_path: Path) -> None:
    opts = ImportOptions(name='bad', input_size=(W, H), taps={'features': '/head/Relu_typo'})
    with pytest.raises(ConfigError, match=r"tap 'features': no tensor '/head/Relu_typo' in .*icnet\.onnx; .*Conv"):
        import_model(user_onnx, 'onnx', opts, tmp_path / 'models')
    assert not (tmp_path / 'models' / 'bad').exists()


def test_unknown_tap_in_a_hand_edited_model_yaml_fails_at_start(folder: Path, tmp_path: Path) -> None:
    import shutil

    edited = tmp_path / 'edited'
    shutil.copytree(folder, edited)
    raw = yaml.safe_load((edited / 'model.yaml').read_text())
    raw['taps'] = {'features': 'no_such_tensor'}
    (edited / 'model.yaml').write_text(yaml.safe_dump(raw))
    for backend in ('torch', 'onnxruntime'):
        with pytest.raises(ConfigError, match=r"tap 'features': no tensor 'no_such_tensor' in .*model\.onnx"):
            Pipeline.from_model(edited, scorer='_tap_test', backend=backend)(_frame((H, W)))


def test_cli_tap_option(user_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ['import-model', '--onnx', str(user_onnx), '--input-size', f'{W}x{H}', '--models-dir', str(tmp_path)]
    rc = cli_main([*base, '--name', 'ok', '--tap', f'features={HEAD_TENSOR}', '--tap', 'low=/cff_low/Add_output_0'])
    assert rc == 0, capsys.readouterr().err
    assert load_model_config(tmp_path / 'ok').taps == {'features': HEAD_TENSOR, 'low': '/cff_low/Add_output_0'}
    rc = cli_main([*base, '--name', 'bad', '--tap', 'features=/nope'])
    err = capsys.readouterr().err
    assert rc == 2 and "tap 'features': no tensor '/nope'" in err and 'Traceback' not in err
    assert not (tmp_path / 'bad').exists()
    with pytest.raises(SystemExit) as exc:
        cli_main([*base, '--tap', 'features'])
    assert exc.value.code == 2 and 'expected NAME=TENSOR' in capsys.readouterr().err
    rc = cli_main([*base, '--name', 'res', '--tap', f'score={HEAD_TENSOR}'])
    assert rc == 2 and "'score' is reserved" in capsys.readouterr().err


def test_expose_taps_on_a_handmade_graph() -> None:
    h = onnx.helper
    w = onnx.numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), 'w')
    graph = h.make_graph(
        [h.make_node('Conv', ['x', 'w'], ['c']), h.make_node('Relu', ['c'], ['y'])],
        'g',
        [h.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1, 3, 5, 6])],
        [h.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [1, 4, 5, 6])],
        [w],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid('', 17)], ir_version=8)
    out = compose.expose_taps(model, {'c': 'c', 'feat': 'c'}, 'hand.onnx')
    assert [o.name for o in out.graph.output] == ['y', 'c', 'feat']
    assert [n.op_type for n in out.graph.node] == ['Conv', 'Relu', 'Identity']  # only the renamed tap needs one
    feat = out.graph.output[2].type.tensor_type
    assert feat.elem_type == onnx.TensorProto.FLOAT and [d.dim_value for d in feat.shape.dim] == [1, 4, 5, 6]
    onnx.checker.check_model(out)
    assert len(model.graph.output) == 1  # the input model is not modified
    with pytest.raises(ConfigError, match=r"tap 'f': no tensor 'cc' in hand\.onnx; tensor names there look like: c"):
        compose.expose_taps(model, {'f': 'cc'}, 'hand.onnx')
    with pytest.raises(ConfigError, match=r"tap 'w': the graph in hand\.onnx already has a tensor called 'w'"):
        compose.expose_taps(model, {'w': 'c'}, 'hand.onnx')
    with pytest.raises(ConfigError, match=r"tap 'y': the graph in hand\.onnx already has an output 'y'"):
        compose.expose_taps(model, {'y': 'c'}, 'hand.onnx')


def test_opset_13_user_graph_is_converted_and_composes(net: torch.nn.Module, tmp_path: Path) -> None:
    src = _export(net, tmp_path / 'old.onnx', opset=13, dynamic=False)
    assert {o.domain: o.version for o in onnx.load(str(src)).opset_import}[''] == 13
    out = import_model(src, 'onnx', ImportOptions(name='old', taps={'features': HEAD_TENSOR}), tmp_path / 'models')
    cfg = load_model_config(out)
    path = GraphSource(cfg, build_scorer('_tap_test', cfg)).onnx(CAMERAS[1])
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[''] == 17
    ref = Pipeline.from_model(out, scorer='_tap_test', backend='torch')
    _assert_parity(ref, Pipeline.from_model(out, scorer='_tap_test', backend='onnxruntime'), CAMERAS[1])


def test_a_graph_the_converter_cannot_convert_is_named(
    net: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _export(net, tmp_path / 'old.onnx', opset=13, dynamic=False)
    out = import_model(src, 'onnx', ImportOptions(name='old'), tmp_path / 'models')

    def fail(model: object, target: int) -> None:
        raise RuntimeError('No adapter for Frobnicate')  # as the converter says for an op it cannot convert

    monkeypatch.setattr(onnx.version_converter, 'convert_version', fail)
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path / 'cache'))  # not the graph the import composed
    cfg = load_model_config(out)
    want = r'old/model\.onnx: cannot convert the graph from opset 13 to 17 .*Frobnicate'
    with pytest.raises(BackendError, match=want):
        GraphSource(cfg, build_scorer('entropy', cfg)).onnx((H, W))


@pytest.mark.parametrize('inline', [True, False], ids=['inline', 'external'])
def test_external_data_model_composes(
    user_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    src_dir = tmp_path / 'export'
    (src_dir / 'weights').mkdir(parents=True)  # weights in a subfolder: the relative path must survive the import
    onnx.save_model(
        onnx.load(str(user_onnx)), str(src_dir / 'ext.onnx'), save_as_external_data=True,
        location='weights/ext.bin', size_threshold=0,
    )  # fmt: skip
    opts = ImportOptions(name='ext', input_size=(W, H), taps={'features': HEAD_TENSOR})
    out = import_model(src_dir / 'ext.onnx', 'onnx', opts, tmp_path / 'models')
    assert (out / 'weights' / 'ext.bin').is_file()
    if not inline:  # as for a net over ~1.8 GB: the fused graph keeps its weights in one file beside it
        monkeypatch.setattr(compose, 'INLINE_LIMIT', 0)
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path / 'cache'))
    cfg = load_model_config(out)
    path = GraphSource(cfg, build_scorer('_tap_test', cfg)).onnx(CAMERAS[0])
    onnx.checker.check_model(str(path))
    graph_only = onnx.load(str(path), load_external_data=False)
    external = {
        e.value
        for t in graph_only.graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
        for e in t.external_data
        if e.key == 'location'
    }
    if inline:
        assert external == set()
    else:
        (data,) = external
        assert (path.parent / data).is_file() and '/' not in data and data.startswith(path.stem)
    ref = Pipeline.from_model(out, scorer='_tap_test', backend='torch')
    _assert_parity(ref, Pipeline.from_model(out, scorer='_tap_test', backend='onnxruntime'), CAMERAS[0])


def test_opset_18_graph_with_the_pipelines_own_names_composes(net: torch.nn.Module, tmp_path: Path) -> None:
    """A newer opset has the torch parts exported at it; a user graph whose input is called 'frame' and whose
    output is called 'score' does not collide with the fused graph's own names (the net's names are prefixed)."""
    src = tmp_path / 'new.onnx'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            net.eval(), (torch.zeros(1, 3, H, W),), str(src), opset_version=18, dynamo=False,
            input_names=['frame'], output_names=['score'],
        )  # fmt: skip
    out = import_model(src, 'onnx', ImportOptions(name='new'), tmp_path / 'models')
    cfg = load_model_config(out)
    model = onnx.load(str(GraphSource(cfg, build_scorer('entropy', cfg)).onnx(CAMERAS[1])))
    assert {o.domain: o.version for o in model.opset_import}[''] == 18
    assert [i.name for i in model.graph.input] == ['frame'] and [o.name for o in model.graph.output] == [
        'labels',
        'score',
    ]
    ref = Pipeline.from_model(out, backend='torch')
    _assert_parity(ref, Pipeline.from_model(out, backend='onnxruntime'), CAMERAS[1])
