"""anomaly_seg_ros: road anomaly segmentation for ROS 2, with a ROS-free core.

Import order runs one way: classes/config/errors <- nets <- backends <- scoring, eval <- data <- pipeline
<- bag <- cli, ros. Only anomaly_seg_ros.ros.node imports rclpy.
"""

__version__ = '0.1.0'
