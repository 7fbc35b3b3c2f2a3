"""Launch the anomaly_seg node with its params file (needs a ROS 2 install with launch_ros).

    ros2 launch anomaly_seg_ros anomaly_seg.launch.py image:=/camera/front/image_raw
    ros2 launch anomaly_seg_ros anomaly_seg.launch.py params_file:=/path/to/my.yaml namespace:=front

Parameters live in the params file only (config/default.yaml unless params_file says otherwise);
this file does not re-declare them. The input topics are remapped here, outputs stay relative.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory('anomaly_seg_ros'), 'config', 'default.yaml')
    image = LaunchConfiguration('image')
    return LaunchDescription(
        [
            DeclareLaunchArgument('params_file', default_value=default_params, description='ROS 2 params file'),
            DeclareLaunchArgument('namespace', default_value='', description='namespace of the node'),
            DeclareLaunchArgument('image', default_value='image', description='input sensor_msgs/Image topic'),
            Node(
                package='anomaly_seg_ros',
                executable='anomaly_seg',
                name='anomaly_seg',
                namespace=LaunchConfiguration('namespace'),
                parameters=[LaunchConfiguration('params_file')],
                remappings=[('image', image), ('image/compressed', [image, '/compressed'])],
                output='screen',
                emulate_tty=True,
            ),
        ]
    )
