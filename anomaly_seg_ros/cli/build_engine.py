"""`anomaly-seg build-engine`: build (or find in the cache) the TensorRT engines of a model, then exit.

For vehicle provisioning: run once per camera size on the vehicle's GPU, and the node's first frames find
their engine in the cache instead of waiting minutes for a build. The engines go to the cache the node reads
(``$ANOMALY_SEG_CACHE/engines``, see backends/engine_cache.py); for each size this prints the engine file,
its key fields and the build time. int8 calibrates on frames from a folder of images or a bag (read here:
the backend layer does not read bags), and caches the calibration beside the engines.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..defaults import TRT_CALIB_FRAMES, TRT_PRECISION, TRT_WORKSPACE_GB
from ..errors import BackendError, ConfigError
from .export import AuxList, BoundedSize
from .types import FloatRange, positive_int

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'bag_calibration_source', 'run']

HELP = 'build the TensorRT engines of a model (or find them in the cache) and exit; for vehicle provisioning'
DESCRIPTION = f"""{HELP}.

Engines are cached under $ANOMALY_SEG_CACHE/engines (default ~/.cache/anomaly_seg_ros/engines), keyed by
the fused graph's sha256, the TensorRT version, the GPU, the precision and the camera size; the node uses
them without building. Example:

    anomaly-seg build-engine --model default --size 2048x1024 --size 1024x512 --precision fp16"""

# the TensorRT backend's choices and defaults, without importing it (it imports torch: not at --help time);
# the defaults are defaults.TRT_*, as the backend's; test_tensorrt.py checks PRECISIONS against engine_cache's
PRECISIONS = ('fp32', 'fp16', 'int8')
PRECISION = TRT_PRECISION
CALIB_FRAMES = TRT_CALIB_FRAMES
WORKSPACE_GB = TRT_WORKSPACE_GB


def add_parser(subparsers: Subparsers) -> CommandParser:
    be = subparsers.add_parser('build-engine', help=HELP, description=DESCRIPTION)
    be.add_argument('--model', default='default', help='model folder or name under models/')
    be.add_argument('--scorer', default='', help="scorer in the graph (default: the model's own)")
    be.add_argument(
        '--size',
        type=BoundedSize(),
        action='append',
        default=None,
        help="camera frame size WIDTHxHEIGHT; repeat for several cameras (default: the model's input size)",
    )
    be.add_argument('--precision', choices=PRECISIONS, default=PRECISION, help='engine precision')
    be.add_argument(
        '--calibration',
        type=Path,
        default=None,
        help='int8 calibration frames: a folder of images or a bag (default: none; required for int8)',
    )
    be.add_argument('--image-topic', help='bag image topic for --calibration (default: the only image topic)')
    be.add_argument('--calib-frames', type=positive_int, default=CALIB_FRAMES, help='int8 calibration frames')
    be.add_argument('--device', default='cuda', help='CUDA device (cuda, cuda:N)')
    be.add_argument(
        '--aux', type=AuxList(), default=(), help='extra score maps as graph outputs: comma-separated scorer names'
    )
    be.add_argument(
        '--workspace-gb',
        type=FloatRange(0.0, lo_open=True),
        default=WORKSPACE_GB,
        help='TensorRT builder workspace limit, GiB',
    )
    return be


def bag_calibration_source(path: Path, image_topic: str | None) -> Any:
    """Calibration frames from a bag's image topic (no ground truth read); the topic is resolved now, so a
    bad bag or topic fails before any build."""
    from ..backends.calibration import CalibrationSource, bag_identity
    from ..bag import BagReader

    probe = BagReader(path, image_topic=image_topic, anomaly_topic=None, labels_topic=None)
    topic = probe.image_topic
    probe.close()

    def read() -> Any:
        with BagReader(path, image_topic=image_topic, anomaly_topic=None, labels_topic=None) as reader:
            for frame in reader:
                yield frame.sample.image

    return CalibrationSource(f'bag {path} ({topic})', bag_identity(path, image_topic), read)


def run(args: argparse.Namespace) -> int:
    if args.precision == 'int8' and args.calibration is None:
        raise ConfigError('build-engine: --precision int8 needs --calibration FOLDER_OR_BAG')
    if args.precision != 'int8' and args.calibration is not None:
        raise ConfigError(f'build-engine: --calibration is only used with --precision int8, not {args.precision}')
    from ..backends.tensorrt_backend import TensorRTBackend, capabilities

    caps = capabilities()
    if caps.available is not None:
        raise BackendError(f'no TensorRT engine can be built here: {caps.available}')
    from ..backends import GraphSource
    from ..backends.calibration import is_bag
    from ..config import load_model_config, resolve_model_dir
    from ..scoring import build_scorer

    cfg = load_model_config(resolve_model_dir(args.model))
    scorer = args.scorer or cfg.scorer
    source = GraphSource(cfg, build_scorer(scorer, cfg), tuple(args.aux))
    calibration: Any = args.calibration
    if calibration is not None and is_bag(calibration):
        calibration = bag_calibration_source(calibration, args.image_topic)
    sizes = args.size or [(cfg.input.width, cfg.input.height)]
    backend = TensorRTBackend(
        source,
        args.device,
        args.precision,
        calibration=calibration,
        calib_frames=args.calib_frames,
        workspace_gb=args.workspace_gb,
    )
    try:
        print(f'model {cfg.name!r}, scorer {scorer!r}, aux {",".join(args.aux) or "none"}, {args.precision}')
        for w, h in dict.fromkeys(sizes):
            record = backend.prepare((h, w))
            how = f'built in {record.build_s:.1f} s' if record.built else 'found in the cache'
            print(f'engine {w}x{h}: {record.path} ({how})')
            for field, value in record.key.identity().items():
                if value != '':
                    print(f'  {field}: {value}')
    finally:
        backend.close()
    return 0
