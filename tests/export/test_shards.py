"""A ViT backbone (21 MB) goes into an entry as Keras shards, each under the 5 MiB limit that
entry files keep to, and loads back exactly."""
import json
import os

import numpy as np

from sslzoo import backbones, zoo
from sslzoo.export.entry import copy_backbone

LIMIT = 5 * 1024 * 1024


def test_vit_tiny_backbone_is_sharded_under_the_file_limit(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    net = backbones.build("vit_tiny", image_size=32)
    net.save_weights(run / zoo.BACKBONE_FILE)
    assert os.path.getsize(run / zoo.BACKBONE_FILE) > 4 * LIMIT
    (run / zoo.CONFIG_FILE).write_text(json.dumps({"method": "simclr", "backbone": "vit_tiny",
                                                   "image_size": 32}))
    entry = tmp_path / "entry"
    entry.mkdir()
    path = copy_backbone(zoo.resolve(str(run)), str(entry), "test")
    assert os.path.basename(path) == zoo.SHARDED_BACKBONE_FILE
    files = zoo.weights_files(path)
    assert len(files) >= 5 and all(os.path.getsize(f) <= LIMIT for f in files)
    assert sorted(map(os.path.basename, files)) == sorted(os.listdir(entry))
    fresh = backbones.build("vit_tiny", image_size=32)
    zoo.strict_load(fresh, path, "test")
    for a, b in zip(net.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
