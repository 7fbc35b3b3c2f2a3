"""`anomaly-seg <command>`: one entry point for the node, training, evaluation, benchmark and demo.

Heavy modules are imported inside each command so `--help` is instant and only `node`, `demo` and
`bench` touch rclpy.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AnomalySegError

if TYPE_CHECKING:  # annotations only: the data modules stay lazily imported
    from .data.sample import Sample
    from .data.synthetic import SyntheticWorld

__all__ = ['main']


def _size(text: str) -> tuple[int, int]:
    """'1024x512' -> (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT like 1024x512, got {text!r}') from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f'size {text!r} too small (min 32x32)')
    return w, h


def _cmd_node(args: argparse.Namespace, ros_args: list[str]) -> int:
    from .config import load_node_config

    # Validate the whole file first: rclpy silently ignores keys the node never declares.
    load_node_config(args.params)
    from .ros.node import main as node_main

    return node_main(['anomaly_seg', '--ros-args', '--params-file', str(args.params), *ros_args])


def _cmd_train_seg(args: argparse.Namespace) -> int:
    from .train.seg import SegTrainConfig, train_segmentation

    cfg = SegTrainConfig(
        out=args.out,
        width=args.width,
        input_height=args.input_size[1],
        input_width=args.input_size[0],
        crop_height=args.crop[1],
        crop_width=args.crop[0],
        batch=args.batch,
        iters=args.iters,
        lr=args.lr,
        eval_every=args.eval_every,
        seed=args.seed,
        threads=args.threads,
    )
    train: Sequence[Sample]
    val: Sequence[Sample]
    if args.dataset == 'synthetic':
        from .data.synthetic import SyntheticWorld, WorldConfig

        world = WorldConfig(height=cfg.input_height, width=cfg.input_width, anomaly_prob=0.0)
        train = _materialise(SyntheticWorld(args.train_frames, seed=args.seed, config=world), 'generate train')
        val = _materialise(SyntheticWorld(args.val_frames, seed=args.seed + 1, config=world), 'generate val')
        source = f'{args.train_frames} synthetic frames (seed {args.seed})'
    elif args.dataset == 'cityscapes':
        from .data.readers import CityscapesReader

        if args.root is None:
            raise AnomalySegError('train seg: --dataset cityscapes needs --root (the folder holding leftImg8bit/)')
        # Real datasets stay on disk and are read per batch; only the synthetic world is pre-rendered.
        train = CityscapesReader(args.root, split=args.train_split)
        full_val = CityscapesReader(args.root, split=args.val_split)
        val = [full_val[i] for i in range(min(len(full_val), args.val_frames))] if args.val_frames else full_val
        source = f'Cityscapes {args.train_split} ({len(train)} frames) under {args.root}'
    else:
        raise AnomalySegError(f'train seg: unknown dataset {args.dataset!r}; use synthetic or cityscapes')
    desc = f'{cfg.architecture} width {args.width} trained on {source} by `anomaly-seg train seg`'
    summary = train_segmentation(cfg, train, val, resume=args.resume, description=desc)
    last = summary['history'][-1] if summary['history'] else {}
    print(json.dumps({'out': str(args.out), **last}, indent=2))
    return 0


def _materialise(world: SyntheticWorld, desc: str) -> list[Sample]:
    """Pre-render frames once: training revisits each frame many times and rendering costs more than a copy."""
    from tqdm import tqdm

    return [world[i] for i in tqdm(range(len(world)), desc=desc)]


def _numbers(kind: type, n: int, example: str) -> Callable[[str], tuple]:
    """argparse type: exactly n comma-separated values of `kind`, e.g. '0.5,0.5,0.5'."""

    def parse(text: str) -> tuple:
        try:
            vals = tuple(kind(v) for v in text.split(','))
        except ValueError:
            vals = ()
        if len(vals) != n:
            raise argparse.ArgumentTypeError(f'expected {n} comma-separated numbers like {example}, got {text!r}')
        return vals

    return parse


def _scale(text: str) -> float:
    try:
        if '/' in text:
            num, den = text.split('/')
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f'expected a number like 1 or 1/255, got {text!r}') from None


def _kv(text: str) -> tuple[str, object]:
    if '=' not in text:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    import yaml

    key, value = text.split('=', 1)
    return key, yaml.safe_load(value)


def _cmd_import_model(args: argparse.Namespace) -> int:
    from .config import default_models_dir
    from .importer import ImportOptions, import_model

    fmt, source = next(
        (f, p)
        for f, p in (('onnx', args.onnx), ('torch', args.torch), ('torchscript', args.torchscript))
        if p is not None
    )
    opts = ImportOptions(
        name=args.name or source.stem,
        classes=args.classes,
        input_size=args.input_size,
        channel_order=args.channel_order,
        scale=args.scale,
        mean=args.mean,
        std=args.std,
        void_channel=args.void_channel,
        scorer=args.scorer,
        architecture=args.architecture or 'external',
        arch_args=dict(args.arch_arg or []),
    )
    out = import_model(source, fmt, opts, args.models_dir or default_models_dir(), overwrite=args.overwrite)
    print(
        f'wrote {out} (validated by a forward pass); run it with: anomaly-seg node --params ... '
        f'--ros-args -p model:={out}'
    )
    return 0


def _cmd_blend(args: argparse.Namespace) -> int:
    from .data.blend import BlendConfig, blend_folder

    cfg = BlendConfig(
        objects_per_image=args.objects_per_image,
        scale_range=args.scale_range,
        horizon=args.horizon,
        in_distribution_prob=args.in_dist_prob,
        glow_prob=args.glow_prob,
        motion_blur=not args.no_motion_blur,
        depth_blur=not args.no_depth_blur,
        color_noise=args.color_noise,
        seed=args.seed,
    )
    n = blend_folder(args.images, args.objects, args.out, cfg, in_dist_dir=args.in_dist_objects, limit=args.limit)
    print(
        f'wrote {n} blended images to {args.out}/images, labels (0 in-dist, 1 anomaly, 255 ignore) to '
        f'{args.out}/labels, settings to {args.out}/blend.json'
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvaluateOptions, run_evaluate

    opts = EvaluateOptions(
        bag=args.bag,
        dataset=args.dataset,
        root=args.root,
        split=args.split,
        count=args.count,
        seed=args.seed,
        size=args.size,
        limit=args.limit,
        image_topic=args.image_topic,
        anomaly_topic=args.anomaly_topic,
        labels_topic=args.labels_topic,
        strict=args.strict,
        mode=args.mode,
        params=args.params,
        overrides={'model': args.model, 'scorer': args.scorer, 'backend': args.backend, 'device': args.device},
        rate_scale=args.rate_scale,
        late_ms=args.late_ms,
        exact=args.exact,
        bins=args.bins,
        threshold=args.threshold,
        min_gt_size=args.min_gt_size,
        min_pred_size=args.min_pred_size,
        worst_k=args.worst,
        out=args.out,
    )
    run = run_evaluate(opts)
    print(json.dumps(_headline(run.report), indent=2))
    if args.out:
        print(f'wrote {args.out}/report.json and {args.out}/report.html', file=sys.stderr)
    return 0


def _headline(report: dict) -> dict:
    """What a person reads first: what was evaluated and the main numbers (all of them are in report.json)."""
    px = report.get('pixel', {})
    seg = report.get('segmentation', {})
    comp = report.get('components', {})
    lat = report.get('latency', {})
    return {
        'evaluated': report['evaluated'],
        'AP': px.get('ap'),
        'FPR95': px.get('fpr95'),
        'AUROC': px.get('auroc'),
        'anomaly_pixels': px.get('n_pos'),
        'in_distribution_pixels': px.get('n_neg'),
        'note': px.get('note'),
        'mIoU': seg.get('miou'),
        'smiyc_mean_F1': comp.get('smiyc', {}).get('mean_f1'),
        'chan_F1': comp.get('chan', {}).get('f1'),
        'latency_end_to_end': lat.get('end_to_end'),
        'frames_by_status': lat.get('frames_by_status'),
        'skipped': len(report.get('skipped', [])),
    }


def _cmd_bag(args: argparse.Namespace) -> int:
    from .bag import bag_info, write_bag

    if args.what == 'info':
        print(json.dumps(bag_info(args.bag), indent=2, default=str))
        return 0
    if args.format == 'synthetic':
        from .data.synthetic import SyntheticWorld, WorldConfig

        w, h = args.size
        samples: SyntheticWorld | Sequence[Sample] = SyntheticWorld(
            args.count, seed=args.seed, config=WorldConfig(height=h, width=w)
        )
    else:
        from .data.readers import open_dataset

        if args.root is None:
            raise AnomalySegError(f'bag from-dataset: --format {args.format} needs --root')
        samples = open_dataset(args.format, args.root, **({'split': args.split} if args.split else {}))
    if args.limit is not None:
        samples = [samples[i] for i in range(min(args.limit, len(samples)))]
    summary = write_bag(
        samples,
        args.out,
        storage=args.storage,
        compressed=args.compressed,  # type: ignore[arg-type]
        rate_hz=args.rate,
        frame_id=args.frame_id,
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    run_bench(model=args.model, scorer=args.scorer, frames=args.frames, ros=not args.no_ros, device=args.device)
    return 0


def _cmd_bench_metrics(args: argparse.Namespace) -> int:
    from .eval.bench_metrics import METHODS, run_metrics_bench

    methods = tuple(m for m in METHODS if m not in (args.skip or []))
    run_metrics_bench(args.frames, args.size, methods)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .ros.demo import run_demo

    return run_demo(model=args.model, frames=args.frames, size=args.size, out=args.out, seed=args.seed)


def _dataset_formats() -> tuple[str, ...]:
    from .data.readers import DATASET_FORMATS

    return tuple(DATASET_FORMATS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='anomaly-seg', description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = p.add_subparsers(dest='command', required=True)

    node = sub.add_parser('node', help='run the ROS 2 node (extra --ros-args ... are passed to ROS)')
    node.add_argument('--params', type=Path, default=Path('config/default.yaml'), help='ROS 2 params file')

    train = sub.add_parser('train', help='training entry points')
    tsub = train.add_subparsers(dest='what', required=True)
    ts = tsub.add_parser('seg', help='train the segmentation net; writes a model folder')
    ts.add_argument('--dataset', default='synthetic', choices=['synthetic', 'cityscapes'], help='training data')
    ts.add_argument('--root', type=Path, help='dataset root for --dataset cityscapes (holds leftImg8bit/, gtFine/)')
    ts.add_argument('--train-split', default='train', help='Cityscapes split to train on')
    ts.add_argument('--val-split', default='val', help='Cityscapes split for the periodic mIoU')
    ts.add_argument('--out', type=Path, required=True, help='model folder to write (model.yaml, model.pt, ...)')
    ts.add_argument('--iters', type=int, default=1500)
    ts.add_argument('--batch', type=int, default=8)
    ts.add_argument('--lr', type=float, default=2e-3)
    ts.add_argument('--width', type=int, default=32, help='channel width of icnet_small')
    ts.add_argument('--input-size', type=_size, default=(512, 256), help='network input WIDTHxHEIGHT')
    ts.add_argument('--crop', type=_size, default=(384, 192), help='training crop WIDTHxHEIGHT')
    ts.add_argument('--train-frames', type=int, default=2000, help='synthetic frames to pre-render for training')
    ts.add_argument('--val-frames', type=int, default=100, help='validation frames (Cityscapes: first N; 0 = all)')
    ts.add_argument('--eval-every', type=int, default=250)
    ts.add_argument('--seed', type=int, default=0)
    ts.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    ts.add_argument('--resume', action='store_true', help='continue from OUT/checkpoint.pt')

    im = sub.add_parser('import-model', help='bring your own segmentation net: writes and validates models/NAME/')
    model_file = im.add_mutually_exclusive_group(required=True)
    model_file.add_argument('--onnx', type=Path, help='ONNX file: NCHW float image in, NxKxHxW logits out')
    model_file.add_argument('--torch', type=Path, help='state dict of a registered architecture (see --architecture)')
    model_file.add_argument('--torchscript', type=Path, help='TorchScript archive of a segmentation net')
    im.add_argument('--name', help='model folder name (default: the file stem)')
    im.add_argument('--classes', default='cityscapes', help="'cityscapes' (19 trainIds) or a file, one name per line")
    im.add_argument('--input-size', type=_size, help='WIDTHxHEIGHT the net expects (default: from the ONNX input)')
    im.add_argument('--channel-order', choices=['rgb', 'bgr'], default='rgb')
    im.add_argument('--scale', type=_scale, default=1 / 255, help='multiply uint8 pixels by this first: 1 or 1/255')
    im.add_argument(
        '--mean',
        type=_numbers(float, 3, '0.485,0.456,0.406'),
        default=(0.485, 0.456, 0.406),
        help='per channel, after scaling',
    )
    im.add_argument(
        '--std',
        type=_numbers(float, 3, '0.229,0.224,0.225'),
        default=(0.229, 0.224, 0.225),
        help='per channel, after scaling',
    )
    im.add_argument(
        '--void-channel', action='store_true', help='the net outputs one extra void/background channel last'
    )
    im.add_argument('--scorer', default='entropy', help='default scorer written into model.yaml')
    im.add_argument('--architecture', help='registered architecture for --torch (e.g. icnet_small)')
    im.add_argument('--arch-arg', type=_kv, action='append', metavar='KEY=VALUE', help='architecture argument')
    im.add_argument('--models-dir', type=Path, help='where model folders live (default: the package models/)')
    im.add_argument('--overwrite', action='store_true', help='replace an existing model folder')

    bl = sub.add_parser('blend', help='paste RGBA objects into your images (Fishyscapes-style): an anomaly val set')
    bl.add_argument('--images', type=Path, required=True, help='folder of png/jpg camera images')
    bl.add_argument('--objects', type=Path, required=True, help='folder of RGBA png objects (the anomalies)')
    bl.add_argument('--in-dist-objects', type=Path, help='RGBA png objects blended the same way but labelled 0')
    bl.add_argument('--out', type=Path, required=True, help='output folder: images/, labels/, blend.json')
    bl.add_argument(
        '--objects-per-image', type=_numbers(int, 2, '1,2'), default=(1, 2), help='MIN,MAX objects per image'
    )
    bl.add_argument(
        '--scale-range',
        type=_numbers(float, 2, '0.05,0.25'),
        default=(0.05, 0.25),
        help='MIN,MAX object height as a fraction of image height (far..near)',
    )
    bl.add_argument('--horizon', type=float, default=0.45, help='horizon row as a fraction of image height')
    bl.add_argument('--in-dist-prob', type=float, default=0.3, help='chance an object is in-distribution')
    bl.add_argument('--glow-prob', type=float, default=0.1)
    bl.add_argument('--color-noise', type=float, default=0.02)
    bl.add_argument('--no-motion-blur', action='store_true')
    bl.add_argument('--no-depth-blur', action='store_true')
    bl.add_argument('--seed', type=int, default=0)
    bl.add_argument('--limit', type=int, help='only the first N images')

    ev = sub.add_parser(
        'evaluate',
        help='replay a bag (or a dataset) through the Pipeline or the live node; '
        'benchmark metrics, latency, report.json + report.html',
    )
    src = ev.add_argument_group('source (one of --bag, --dataset)')
    src.add_argument('--bag', type=Path, help='rosbag2 folder/file (mcap, sqlite3) or ROS 1 bag')
    src.add_argument('--dataset', help='synthetic, or a dataset format: ' + ', '.join(_dataset_formats()))
    src.add_argument('--root', type=Path, help='dataset root for --dataset FORMAT')
    src.add_argument('--split', help='dataset split (cityscapes/lostandfound)')
    src.add_argument('--count', type=int, default=200, help='synthetic: number of frames')
    src.add_argument('--seed', type=int, default=1000, help='synthetic: world seed of the held-out split')
    src.add_argument('--size', type=_size, default=(1024, 512), help='synthetic: frame WIDTHxHEIGHT')
    src.add_argument('--limit', type=int, help='evaluate only the first N frames')
    src.add_argument('--image-topic', help='bag image topic (default: the only Image/CompressedImage topic)')
    src.add_argument('--anomaly-topic', default='/ground_truth/anomaly', help='bag anomaly GT topic (mono8 0/1/255)')
    src.add_argument('--labels-topic', default='/ground_truth/labels', help='bag trainId GT topic (mono8)')
    src.add_argument('--strict', action='store_true', help='stop at the first bad message instead of skipping it')
    run = ev.add_argument_group('what runs')
    run.add_argument(
        '--mode',
        choices=['offline', 'live'],
        default='offline',
        help='offline: Pipeline as fast as it can; live: the node, fed at the recorded rate',
    )
    run.add_argument('--params', type=Path, help='node params file (default: config/default.yaml)')
    run.add_argument('--model', help='override the params file: model folder or name under models/')
    run.add_argument('--scorer', help='override the params file: scorer')
    run.add_argument('--backend', help='override the params file: backend')
    run.add_argument('--device', help='override the params file: device')
    run.add_argument('--rate-scale', type=float, default=1.0, help='live: play at the recorded rate times this')
    run.add_argument('--late-ms', type=float, help='live: answers later than this count as late (default: 2 periods)')
    met = ev.add_argument_group('metrics')
    met.add_argument('--exact', action='store_true', help='exact pixel metrics (small runs only; default: binned)')
    met.add_argument('--bins', type=int, default=65536, help='bins of the streaming pixel metrics')
    met.add_argument('--threshold', type=float, help='component metrics: anomaly where score > T (default: mid-range)')
    met.add_argument('--min-gt-size', type=int, default=0, help='SMIYC: ignore GT components smaller than this')
    met.add_argument('--min-pred-size', type=int, default=0, help='SMIYC: drop predicted components smaller than this')
    met.add_argument('--worst', type=int, default=4, help='worst frames shown per criterion in the HTML report')
    ev.add_argument('--out', type=Path, help='folder for report.json and report.html')

    bag = sub.add_parser('bag', help='datasets to rosbag2, bag info (no ROS install needed)')
    bsub = bag.add_subparsers(dest='what', required=True)
    bf = bsub.add_parser('from-dataset', help='write camera frames + ground truth topics into a new bag')
    bf.add_argument('--format', required=True, choices=['synthetic', *_dataset_formats()])
    bf.add_argument('--root', type=Path, help='dataset root (not for synthetic)')
    bf.add_argument('--split', help='dataset split (cityscapes/lostandfound)')
    bf.add_argument('--out', type=Path, required=True, help='bag to create (must not exist)')
    bf.add_argument('--storage', choices=['mcap', 'sqlite3'], default='mcap')
    bf.add_argument('--compressed', choices=['jpeg', 'png'], help='write sensor_msgs/CompressedImage instead of Image')
    bf.add_argument('--rate', type=float, default=10.0, help='frames per second of the stamps')
    bf.add_argument('--frame-id', default='camera')
    bf.add_argument('--limit', type=int, help='only the first N samples')
    bf.add_argument('--count', type=int, default=50, help='synthetic: frames')
    bf.add_argument('--seed', type=int, default=1000, help='synthetic: world seed')
    bf.add_argument('--size', type=_size, default=(1024, 512), help='synthetic: WIDTHxHEIGHT')
    bi = bsub.add_parser('info', help='topics, types, counts, duration of a bag')
    bi.add_argument('bag', type=Path)

    be = sub.add_parser('bench', help='per-stage latency at 1024x512 and 2048x1024, and node overhead')
    be.add_argument('--model', default='default')
    be.add_argument('--scorer', default='')
    be.add_argument('--frames', type=int, default=30, help='timed frames per size')
    be.add_argument('--device', default='cpu')
    be.add_argument('--no-ros', action='store_true', help='skip the through-ROS measurement')

    bm = sub.add_parser('bench-metrics', help='pixel-metric throughput and peak memory: binned vs exact vs sklearn')
    bm.add_argument('--frames', type=int, default=200)
    bm.add_argument('--size', type=_size, default=(2048, 1024), help='frame WIDTHxHEIGHT')
    bm.add_argument('--skip', action='append', choices=['binned', 'exact', 'sklearn'], help='leave a method out')

    de = sub.add_parser('demo', help='start the node, stream synthetic frames, print latency, save heatmaps')
    de.add_argument('--model', default='default')
    de.add_argument('--frames', type=int, default=20)
    de.add_argument('--size', type=_size, default=(1024, 512))
    de.add_argument('--seed', type=int, default=2000)
    de.add_argument('--out', type=Path, default=Path('out'))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if '--ros-args' in argv:
        i = argv.index('--ros-args')
        argv, ros_args = argv[:i], argv[i + 1 :]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format='%(levelname)s %(message)s')
    try:
        if args.command == 'node':
            return _cmd_node(args, ros_args)
        if ros_args:
            raise AnomalySegError(f'--ros-args only applies to `node`, not `{args.command}`')
        handlers = {
            'train': _cmd_train_seg,
            'import-model': _cmd_import_model,
            'blend': _cmd_blend,
            'bag': _cmd_bag,
            'bench-metrics': _cmd_bench_metrics,
            'evaluate': _cmd_evaluate,
            'bench': _cmd_bench,
            'demo': _cmd_demo,
        }
        return handlers[args.command](args)
    except AnomalySegError as e:
        print(f'anomaly-seg {args.command}: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
