"""anomaly_seg_ros: road anomaly segmentation for ROS 2, with a ROS-free core.

Layers, lowest first; a module imports only from its own layer or below (``lint-imports`` checks the
contracts in ``.importlinter`` inside ``make test``):

1. errors, classes, stamps, defaults; config, checks; io (image codec and files)
2. metrics (numpy only), data (synthetic world, dataset readers, blending), viz
3. nets <- scoring, preprocess, checkpoint <- backends <- pipeline
4. eval (runners, accumulator, report), bag (rosbag writer and reader), train
5. apps: evaluate, importer, bench
6. ros: the node, its test harness, demo, live evaluation: the only package that imports rclpy or a
   ROS message package
7. cli: one module per `anomaly-seg` subcommand
"""

__version__ = '0.1.0'
