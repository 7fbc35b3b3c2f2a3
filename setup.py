"""ament_python package; also installs with plain pip (no ROS build tools needed)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'anomaly_seg_ros'


def _files(pattern: str) -> list[str]:
    return sorted(p for p in glob(pattern, recursive=True) if not p.endswith('checkpoint.pt'))


def _model_data_files() -> list[tuple[str, list[str]]]:
    out: dict[str, list[str]] = {}
    for path in _files('models/**/*'):
        if not path.endswith('/') and '.' in path.rsplit('/', 1)[-1]:
            out.setdefault(f'share/{PACKAGE}/' + path.rsplit('/', 1)[0], []).append(path)
    return sorted(out.items())


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={PACKAGE: ['py.typed', 'eval/report/templates/*.j2']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', _files('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', _files('config/*.yaml') + _files('config/*.xml')),
        *_model_data_files(),
    ],
    python_requires='>=3.10',
    install_requires=['numpy', 'opencv-python-headless', 'pyyaml', 'tqdm', 'rosbags', 'matplotlib', 'onnxruntime', 'onnx'],
    # torch is deliberately not listed: an open torch requirement makes pip pull GBs of CUDA wheels.
    # Install it pinned (README: pip install torch==2.13.0) or from your platform's build.
    zip_safe=True,
    maintainer='anomaly_seg_ros developers',
    maintainer_email='perception@example.com',
    description='Road anomaly segmentation ROS 2 node with a ROS-free core',
    license='Apache-2.0',
    extras_require={'test': ['pytest', 'scikit-learn']},
    entry_points={
        'console_scripts': [
            'anomaly-seg = anomaly_seg_ros.cli:main',
            'anomaly_seg = anomaly_seg_ros.ros.node:main',
        ],
    },
)
