"""ROS-free input/output of images: the sensor_msgs image codec and image files on disk."""
