"""Bags without ROS: write Samples to a rosbag2 (mcap/sqlite3) and read frames + ground truth back.

Uses the pure-Python ``rosbags`` library and its own typestore (ROS 2 Humble message definitions);
nothing here imports rclpy. Reading also takes ROS 1 bags.

Modules: ``writer`` (Samples -> bag), ``reader`` (bag -> frames, composing ``sources``: opening rosbag2,
ROS 1 and truncated MCAP bags, ``salvage``: the MCAP scanner, ``decode``: messages -> arrays,
``matcher``: pure stamp pairing), ``mcap_crc`` (chunk CRCs filled in after writing),
``types`` (frames, issues, the read report), ``conventions``
(message types and ground-truth values both sides agree on).
"""

from anomaly_seg_ros.bag.reader import BagReader, bag_info, read_bag
from anomaly_seg_ros.bag.types import DEFAULT, BagFrame, BagIssue, BagReadReport
from anomaly_seg_ros.bag.writer import BAG_VERSION, STORAGES, BagTopics, write_bag

__all__ = [
    'BAG_VERSION',
    'DEFAULT',
    'STORAGES',
    'BagFrame',
    'BagIssue',
    'BagReadReport',
    'BagReader',
    'BagTopics',
    'bag_info',
    'read_bag',
    'write_bag',
]
