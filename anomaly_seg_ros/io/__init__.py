"""ROS-free input/output of images: the sensor_msgs image codec and image files on disk."""

from anomaly_seg_ros.io.image_codec import (
    SUPPORTED_ENCODINGS,
    compressed_msg_to_rgb,
    compressed_to_rgb,
    encode_compressed,
    image_msg_to_rgb,
    image_to_rgb,
    rgb_to_image,
)

__all__ = [
    'SUPPORTED_ENCODINGS',
    'compressed_msg_to_rgb',
    'compressed_to_rgb',
    'encode_compressed',
    'image_msg_to_rgb',
    'image_to_rgb',
    'rgb_to_image',
]
