"""`anomaly-seg fit sml` and `fit flow` on an imported ONNX net fed from a bag, end to end through the CLI.

The net is not one of the project's: a small conv net defined here, exported by torch to a fixed-shape ONNX
file (as a user's export would be), imported with `anomaly-seg import-model`, and its frames come from a
rosbag2 written by `bag.write_bag`. The flow tap is a tensor name found in the file (the input of a Relu), not
a name this test assumes. Checked: what model.yaml records, that both fitted scorers run on a camera-size
frame, that the fused ONNX graph (onnxruntime) agrees with the eager reference (torch: ONNX Runtime for the
net, torch around it), and that a tap naming a tensor the graph lacks fails with the name in the message.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from anomaly_seg_ros.cli import main
from anomaly_seg_ros.config import load_model_config
from anomaly_seg_ros.data.sample import Sample

onnx = pytest.importorskip('onnx', reason='onnx not installed')
pytest.importorskip('onnxruntime', reason='onnxruntime not installed')
pytest.importorskip('rosbags', reason='rosbags not installed')

H, W = 64, 128  # the net's fixed input
CAMERAS = ((128, 256), (100, 150))  # twice the input, and a size that is no multiple of it
SCORE_ATOL = 1e-3
#: small flow options: the test checks the plumbing, not the density's quality
FLOW_OPTS = (
    '--steps', '30', '--batch', '256', '--pixels-per-frame', '256', '--coupling-layers', '2', '--hidden', '16',
    '--threads', '1', '--checkpoint-every', '0',
)  # fmt: skip


class _UserNet(nn.Module):
    """A stand-in for a user's segmentation net: two conv-BN-ReLU stages, logits at half resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU())
        self.classifier = nn.Conv2d(12, 19, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(self.stem(x)))


def _user_onnx(path: Path) -> Path:
    torch.manual_seed(0)
    net = _UserNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics: folded into the convs on export
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        nn.init.normal_(net.classifier.weight, std=1.0)  # several classes predicted, not one everywhere
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            net.eval(), (torch.zeros(1, 3, H, W),), str(path), opset_version=17, dynamo=False,
            input_names=['input'], output_names=['out'],
        )  # fmt: skip
    return path


def _relu_inputs(path: Path) -> list[str]:
    g = onnx.load(str(path), load_external_data=False).graph
    return [n.input[0] for n in g.node if n.op_type == 'Relu']


def _frame(hw: tuple[int, int], seed: int) -> np.ndarray:
    """Spatially smooth colour noise, like a camera frame (pure noise makes every pixel a tie)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (hw[0] // 8 + 1, hw[1] // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def _fit(*argv: Any) -> None:
    rc = main(['fit', *map(str, argv)])
    assert rc == 0, f'fit {argv[0]} exited {rc} (its stderr is in the captured output above)'


@pytest.fixture(scope='module')
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Import the user's file, write a bag of input-sized frames, fit sml then flow on it through the CLI."""
    root = tmp_path_factory.mktemp('fit_onnx')
    user = _user_onnx(root / 'user_net.onnx')
    tap = _relu_inputs(user)[-1]  # the body's features before its ReLU (BatchNorm folded into the conv)
    rc = main(['import-model', '--onnx', str(user), '--name', 'user_onnx', '--models-dir', str(root / 'models')])
    assert rc == 0
    folder = root / 'models' / 'user_onnx'
    bag = root / 'drive'
    from anomaly_seg_ros.bag import write_bag

    write_bag([Sample(image=_frame((H, W), i), name=f'f{i}') for i in range(5)], bag, progress=False)
    _fit('sml', '--model', folder, '--bag', bag, '--json', root / 'sml.json')
    _fit('flow', '--model', folder, '--bag', bag, '--tap', f'feat={tap}', '--json', root / 'flow.json', *FLOW_OPTS)
    return {
        'folder': folder,
        'bag': bag,
        'tap': tap,
        'sml': json.loads((root / 'sml.json').read_text()),
        'flow': json.loads((root / 'flow.json').read_text()),
    }


def test_the_model_is_the_imported_onnx_file(fitted: dict[str, Any]) -> None:
    cfg = load_model_config(fitted['folder'])
    assert cfg.format == 'onnx' and (cfg.input.width, cfg.input.height) == (W, H)
    assert fitted['tap'] in _relu_inputs(cfg.weights) and fitted['tap'] not in ('input', 'out')


def test_model_yaml_records_both_fits(fitted: dict[str, Any]) -> None:
    data = yaml.safe_load((fitted['folder'] / 'model.yaml').read_text())
    assert data['format'] == 'onnx' and data['scorer'] == 'entropy'  # neither fit made itself the default
    assert data['taps'] == {'feat': fitted['tap']}
    sml, flow = data['scorers']['sml'], data['scorers']['flow']
    assert sml['artefacts'] == {'stats': 'sml_stats.pt'} and (fitted['folder'] / 'sml_stats.pt').is_file()
    # the paper's band width and dilation scaled to these 64-pixel-wide logits (x 64/2048): at their minimum, 1
    assert sml['params'] == {
        'boundary_iterations': 4,
        'boundary_width': 1,
        'smoothing_kernel': 7,
        'smoothing_dilation': 1,
    }
    assert flow['artefacts'] == {'flow': 'flow.pt'} and (fitted['folder'] / 'flow.pt').is_file()
    assert flow['params'] == {'taps': ['feat'], 'combine': 'min', 'normalise': 'mean'}


def test_the_fits_read_the_bag_at_the_nets_resolution(fitted: dict[str, Any]) -> None:
    sml, flow = fitted['sml'], fitted['flow']
    assert sml['source'] == flow['source'] == f'bag {fitted["bag"]} topic /camera/image_raw'
    assert sml['frames'] == flow['frames'] == 5
    s = sml['summary']
    assert s['logits_hw'] == [H // 2, W // 2] and s['pixels'] == 5 * (H // 2) * (W // 2)
    assert s['pixels_excluded_anomaly'] == 0  # no ground truth in the bag: every pixel counts
    assert len([c for c, row in s['per_class'].items() if row['count'] > 0]) >= 3
    tap = flow['summary']['taps']['feat']
    assert tap['dim'] == 12 and flow['summary']['frames_train'] == 4 and flow['summary']['frames_val'] == 1
    assert tap['embeddings_train'] == 4 * 256 and np.isfinite(tap['val_nll'])
    # the fit's own check ran the fitted scorer through the Pipeline
    assert sml['check']['frame'] == flow['check']['frame'] == f'{W}x{H}'


@pytest.mark.parametrize('scorer', ['sml', 'flow'])
def test_fused_graph_matches_the_eager_reference_at_camera_sizes(fitted: dict[str, Any], scorer: str) -> None:
    from anomaly_seg_ros.pipeline import Pipeline

    ref = Pipeline.from_model(fitted['folder'], scorer=scorer, backend='torch')
    fused = Pipeline.from_model(fitted['folder'], scorer=scorer, backend='onnxruntime')
    try:
        assert ref.scorer.name == fused.scorer.name == scorer
        for hw in CAMERAS:
            frame = _frame(hw, seed=hw[1])
            a, b = ref(frame), fused(frame)
            assert a.labels.shape == b.labels.shape == a.score.shape == hw and a.score.dtype == np.float32
            assert np.isfinite(a.score).all() and float(a.score.std()) > 0  # a real map, not a constant
            assert len(np.unique(a.labels)) >= 2
            np.testing.assert_array_equal(b.labels, a.labels)
            np.testing.assert_allclose(b.score, a.score, atol=SCORE_ATOL, rtol=0)
    finally:
        ref.close()
        fused.close()


def test_an_unknown_tensor_name_fails_naming_it(
    fitted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (fitted['folder'] / 'model.yaml').read_text()
    rc = main(
        ['fit', 'flow', '--model', str(fitted['folder']), '--bag', str(fitted['bag']), '--overwrite',
         '--tap', 'other=/body/no_such_tensor', *FLOW_OPTS]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert "tap 'other': no tensor '/body/no_such_tensor'" in err and fitted['tap'] in err  # candidates listed
    assert (fitted['folder'] / 'model.yaml').read_text() == before  # nothing recorded
