"""Stage train@<model>-<seed>: one model, one seed, per-epoch curves through dvclive."""

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

from dvclive.keras import DVCLiveCallback

from dvclive import Live
from stages.pretrain import BACKBONE_FILE
from tlstudy.data import load_splits
from tlstudy.params import load_params, setup_logging
from tlstudy.training import TrainConfig, save_model, train_model

log = logging.getLogger("train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--processed", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True, help="the trained .keras model")
    parser.add_argument("--live", required=True, help="dvclive directory for the curves")
    parser.add_argument("--init", required=True, help="the pretrain stage's directory for this model")
    args = parser.parse_args()
    setup_logging()
    params = load_params()

    data = load_splits(Path(args.processed), Path(args.split), args.seed)
    config = TrainConfig.from_params(params, args.model)
    # dvcyaml=False: dvc.yaml declares the metrics and plots itself (dvclive would rewrite it).
    with Live(args.live, dvcyaml=False, save_dvc_exp=False, report=None) as live:
        live.log_params({"model": args.model, "seed": args.seed, "train_examples": len(data.train),
                         **asdict(config)})
        backbone = Path(args.init) / BACKBONE_FILE
        model, _ = train_model(args.model, data, config, args.seed, backbone if backbone.exists() else None,
                               callbacks=[DVCLiveCallback(live=live)])
    save_model(model, Path(args.out))
    log.info("saved %s", args.out)


if __name__ == "__main__":
    main()
