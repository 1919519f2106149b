"""Stage train@<model>-<seed>: one model, one seed, per-epoch curves through dvclive."""

import argparse
import json
import logging
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from dvclive import Live
from tlstudy.config import read_params, setup_logging
from tlstudy.data import load_splits, subset_file
from tlstudy.fsutil import fingerprint
from tlstudy.models import BACKBONE_FILE
from tlstudy.provenance import environment
from tlstudy.training import Resume, TrainConfig, save_model, train_choosing_learning_rate

log = logging.getLogger("train")


def log_history(live: Live, history: dict) -> None:
    """A history from ``train_model`` into dvclive, step by step as its Keras callback would log it:
    ``val_*`` under eval/ at the epochs in ``val_epoch``, the rest under train/."""
    metrics = {k: v for k, v in history.items() if k not in ("epoch", "val_epoch", "kept_epoch")}
    for position, epoch in enumerate(history["epoch"]):
        for key, values in metrics.items():
            if key.startswith("val_"):
                if epoch in history["val_epoch"]:
                    live.log_metric(f"eval/{key[4:]}", float(values[history["val_epoch"].index(epoch)]))
            else:
                live.log_metric(f"train/{key}", float(values[position]))
        live.next_step()


def code_files() -> list[Path]:
    """The project's modules this process has imported, this stage's own included: the code a run's
    result depends on, so that editing another stage's module (the report's, say) keeps an
    interrupted run's checkpoints."""
    modules = [module for name, module in list(sys.modules.items()) if name.split(".")[0] in ("tlstudy", "stages")]
    files = {Path(module.__file__).resolve() for module in modules if getattr(module, "__file__", None)}
    return sorted(files | {Path(__file__).resolve()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--processed", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True, help="the trained .keras model")
    parser.add_argument("--live", required=True, help="dvclive directory for the curves")
    parser.add_argument("--init", required=True, help="the pretrain stage's directory for this model")
    parser.add_argument("--resume", required=True,
                        help="checkpoints of this run, kept until it completes: a killed run goes on from there")
    args = parser.parse_args()
    setup_logging()
    params = read_params()  # checked by the fetch stage, which runs first on every repro

    data = load_splits(Path(args.processed), Path(args.split), args.seed)
    config = TrainConfig.from_params(params, args.model)
    backbone = Path(args.init) / BACKBONE_FILE
    backbone = backbone if backbone.exists() else None
    # A checkpoint is resumed only by a run of the same inputs: model, seed, settings, data and code.
    code = code_files()
    inputs = json.dumps({"model": args.model, "seed": args.seed, **asdict(config)}, sort_keys=True)
    resume = Resume(Path(args.resume), fingerprint(inputs, Path(args.processed), Path(args.split) / "indices.npz",
                                                   subset_file(Path(args.split), args.seed), backbone, *code))
    model, history, rate = train_choosing_learning_rate(args.model, data, config, args.seed, backbone,
                                                        resume=resume)
    # The curves are logged once the run is complete, so a resumed run's files equal an uninterrupted
    # one's. dvcyaml=False: dvc.yaml declares what it shows itself (dvclive would rewrite it).
    with Live(args.live, dvcyaml=False, save_dvc_exp=False, report=None) as live:
        live.log_params({"model": args.model, "seed": args.seed, "train_examples": len(data.train),
                         **asdict(config), "learning_rate_used": rate,
                         "kept_epoch": history["kept_epoch"] + 1,  # counted from 1, of `epochs`
                         "environment": environment()})
        log_history(live, history)
    save_model(model, Path(args.out))
    shutil.rmtree(args.resume, ignore_errors=True)
    log.info("saved %s", args.out)


if __name__ == "__main__":
    main()
