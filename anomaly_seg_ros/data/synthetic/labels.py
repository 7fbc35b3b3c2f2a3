"""The Cityscapes trainIds the renderer paints with, under short names (``ROAD``, ``CAR``, ...)."""

from __future__ import annotations

from anomaly_seg_ros.classes import TRAIN_ID

__all__ = [
    'BICYCLE',
    'BUILDING',
    'BUS',
    'CAR',
    'FENCE',
    'LIGHT',
    'MOTORCYCLE',
    'PERSON',
    'POLE',
    'RIDER',
    'ROAD',
    'SIDEWALK',
    'SIGN',
    'SKY',
    'TERRAIN',
    'TRAIN',
    'TRUCK',
    'VEGETATION',
    'WALL',
]

ROAD = TRAIN_ID['road']
SIDEWALK = TRAIN_ID['sidewalk']
BUILDING = TRAIN_ID['building']
WALL = TRAIN_ID['wall']
FENCE = TRAIN_ID['fence']
POLE = TRAIN_ID['pole']
LIGHT = TRAIN_ID['traffic light']
SIGN = TRAIN_ID['traffic sign']
VEGETATION = TRAIN_ID['vegetation']
TERRAIN = TRAIN_ID['terrain']
SKY = TRAIN_ID['sky']
PERSON = TRAIN_ID['person']
RIDER = TRAIN_ID['rider']
CAR = TRAIN_ID['car']
TRUCK = TRAIN_ID['truck']
BUS = TRAIN_ID['bus']
MOTORCYCLE = TRAIN_ID['motorcycle']
BICYCLE = TRAIN_ID['bicycle']
TRAIN = TRAIN_ID['train']
