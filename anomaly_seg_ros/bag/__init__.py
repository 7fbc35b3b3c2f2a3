"""Bags without ROS: write Samples to a rosbag2 (mcap/sqlite3) and read frames + ground truth back.

Uses the pure-Python ``rosbags`` library and its own typestore (ROS 2 Humble message definitions);
nothing here imports rclpy. Reading also takes ROS 1 bags.
"""

from anomaly_seg_ros.bag.reader import (
    DEFAULT,
    BagFrame,
    BagIssue,
    BagReader,
    BagReadReport,
    bag_info,
    read_bag,
)
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
