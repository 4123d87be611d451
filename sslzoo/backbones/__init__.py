"""ResNet backbones: `build(name, image_size, stem, sync_bn)` -> functional keras.Model.

Models take raw pixels in [0, 255] and return pooled features; see `sslzoo.backbones.resnet`.
"""
from sslzoo.backbones.resnet import STAGES, available, build

__all__ = ["STAGES", "available", "build"]
