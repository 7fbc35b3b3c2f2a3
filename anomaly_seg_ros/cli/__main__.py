"""`python -m anomaly_seg_ros.cli`: the same as the `anomaly-seg` console script."""

import sys

from .main import main

sys.exit(main())
