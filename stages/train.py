"""Stage train@<model>-<seed>: one model, one seed, per-epoch curves through dvclive."""

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

from dvclive.keras import DVCLiveCallback

from dvclive import Live
from tlstudy.data import load_splits
from tlstudy.models import BACKBONE_FILE
from tlstudy.params import load_params, setup_logging
from tlstudy.provenance import environment
from tlstudy.training import TrainConfig, save_model, train_choosing_learning_rate

log = logging.getLogger("train")


def log_history(live: Live, history: dict) -> None:
    """A history from ``train_model`` into dvclive, step by step as DVCLiveCallback logs it:
    ``val_*`` under eval/ at the epochs in ``val_epoch``, the rest under train/."""
    metrics = {k: v for k, v in history.items() if k not in ("epoch", "val_epoch")}
    for position, epoch in enumerate(history["epoch"]):
        for key, values in metrics.items():
            if key.startswith("val_"):
                if epoch in history["val_epoch"]:
                    live.log_metric(f"eval/{key[4:]}", float(values[history["val_epoch"].index(epoch)]))
            else:
                live.log_metric(f"train/{key}", float(values[position]))
        live.next_step()


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
                         **asdict(config), "environment": environment()})
        backbone = Path(args.init) / BACKBONE_FILE
        grid = bool(config.learning_rate_grid)
        model, history, rate = train_choosing_learning_rate(
            args.model, data, config, args.seed, backbone if backbone.exists() else None,
            callbacks=[] if grid else [DVCLiveCallback(live=live)])
        if grid:  # the chosen candidate's curves, epoch by epoch as DVCLiveCallback would log them
            log_history(live, history)
        live.log_params({"learning_rate_used": rate})
    save_model(model, Path(args.out))
    log.info("saved %s", args.out)


if __name__ == "__main__":
    main()
