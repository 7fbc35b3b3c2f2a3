"""The ROS 2 shell. Importing this package does not import rclpy: only ros.node and ros.messages do."""

__all__: list[str] = []
