"""Stage pretrain: each registry model's initial weights.

For a model registered as pretrained, the backbone from ``transfer.source`` (``backbone.weights.h5``);
for every other model, a note that it starts from random weights. Each train stage depends on its own
model's directory only, so re-pretraining never re-runs the models trained from scratch.
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from tlstudy.config import DEFAULT_BACKBONE
from tlstudy.fsutil import atomic_dir, write_json
from tlstudy.idx import DatasetError
from tlstudy.models import BACKBONE_FILE, REGISTRY
from tlstudy.params import load_params, setup_logging
from tlstudy.pretrain import MnistPretraining, WeightsError, pretrained_backbone

log = logging.getLogger("pretrain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="directory with one subdirectory per registry model")
    parser.add_argument("--metrics", required=True, help="JSON summary of the pretraining")
    args = parser.parse_args()
    setup_logging()
    params = load_params()
    transfer = params["transfer"]

    try:
        with atomic_dir(Path(args.out)) as out, tempfile.TemporaryDirectory() as workdir:
            summary = None
            for name, spec in REGISTRY.items():
                (out / name).mkdir()
                if not spec.pretrained:
                    write_json(out / name / "init.json", {"model": name, "init": "random"})
                    continue
                if summary is None:  # the arms share image size and backbone (the params check holds them equal)
                    options = params["models"][name]
                    backbone, summary = pretrained_backbone(
                        transfer["source"], int(options["image_size"]), Path(workdir),
                        transfer.get("weights_file"), MnistPretraining(**params["pretrain"]),
                        options.get("backbone", DEFAULT_BACKBONE))
                backbone.save_weights(out / name / BACKBONE_FILE)
                write_json(out / name / "init.json", {"model": name, "init": "pretrained", **summary})
    except (WeightsError, DatasetError) as e:
        log.error("%s", e)
        return 1
    write_json(Path(args.metrics), summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
