"""One training path for every model in the registry."""

from __future__ import annotations

import functools
import json
import logging
import math
import shutil
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tlstudy.batchnorm import recalibrate_batchnorm
from tlstudy.config import DEFAULT_BACKBONE, TRAIN_PRECISIONS
from tlstudy.data import Arrays, Splits, parse_examples_per_class, stratified_part
from tlstudy.fsutil import atomic_dir
from tlstudy.models import BACKBONE, FEATURES, HEAD, build_model, first_stage, model_spec, stage_of

log = logging.getLogger(__name__)


@dataclass
class TransferSchedule:
    """How a pretrained model spends the epoch budget: head alone first, then fine-tuning."""

    frozen_epochs: int = 3  # epochs of the budget spent on the head, backbone frozen (features cached)
    fine_tune: str = "all"  # "all", a stage of the backbone (ResNet50: "conv2".."conv5") to unfreeze from,
    # or "none": the backbone frozen for the whole budget (a linear probe)
    finetune_lr_factor: float = 0.1  # fine-tuning learning rate = learning_rate * this


@dataclass
class ValidationBudget:
    """Which validation images the per-epoch curves use, and how often."""

    examples_per_class: int | None = 100  # a fixed stratified subset; None: the whole validation split
    every: int = 1  # score every this many epochs, and always after the last


@dataclass
class Augment:
    """Random changes to the training images, drawn per image from the run's seed and the epoch (so a
    resumed run sees the same ones): validation, evaluation and the cached-feature phases see the
    images as they are."""

    flip: bool = False  # mirror left-right half the images: label-safe for clothing, not for digits or text
    translate: float = 0.0  # shift by up to this fraction of the side each way, zero-filled (pad, then crop)

    @property
    def active(self) -> bool:
        return self.flip or self.translate > 0


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    model_options: dict = field(default_factory=dict)  # the builder's keyword arguments
    schedule: TransferSchedule = field(default_factory=TransferSchedule)
    validation: ValidationBudget = field(default_factory=ValidationBudget)
    learning_rate_grid: list[float] | None = None  # choose the rate on validation accuracy
    distribute: str = "none"  # "mirrored": tf.distribute.MirroredStrategy over every visible GPU
    deterministic: bool = True  # TensorFlow's deterministic kernels: same params, same numbers
    precision: str = "float32"  # Keras' dtype policy, or "auto" (resolve_precision)
    jit_compile: bool | str = "auto"  # XLA; Keras' "auto" turns it on only where a GPU is visible
    # The recipe; these defaults are the original study's (no augmentation, Adam, the last epoch kept).
    augment: Augment = field(default_factory=Augment)
    weight_decay: float = 0.0  # AdamW's decoupled weight decay; 0: Adam
    keep: str = "last"  # "best": the weights of the best validated epoch; "last": the last epoch's

    @classmethod
    def from_params(cls, params: dict, model: str) -> "TrainConfig":
        train = params["train"]
        options = dict((params.get("models") or {}).get(model) or {})
        schedule_keys = set(TransferSchedule.__dataclass_fields__)
        schedule = TransferSchedule(**{k: options.pop(k) for k in list(options) if k in schedule_keys})
        validation = train.get("validation") or {}
        grid = train.get("learning_rate_grid")
        return cls(
            epochs=int(params["epochs"]),
            batch_size=int(train["batch_size"]),
            learning_rate=float(train["learning_rate"]),
            model_options=options,
            schedule=schedule,
            validation=ValidationBudget(parse_examples_per_class(validation.get("examples_per_class", "all")),
                                        int(validation.get("every", 1))),
            learning_rate_grid=[float(r) for r in grid] if grid else None,
            distribute=str(train.get("distribute") or "none"),
            deterministic=bool(train.get("deterministic", True)),
            precision=str(train.get("precision", "auto")),
            jit_compile=train.get("jit_compile", "auto"),
            augment=Augment(**(train.get("augment") or {})),
            weight_decay=float(train.get("weight_decay", 0.0)),
            keep=str(train.get("keep", "last")),
        )


@functools.cache
def distribution(distribute: str) -> tf.distribute.Strategy:
    """``none``: TensorFlow's default (one device); ``mirrored``: a replica per visible GPU (or per
    logical device), each batch split between them and the gradients summed. One strategy per
    process: a second MirroredStrategy's collectives collide with the first's (the learning-rate
    grid trains several models in one process)."""
    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if distribute != "none":
        raise ValueError(f"train.distribute must be none or mirrored, got {distribute!r}")
    return tf.distribute.get_strategy()


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Python, NumPy and TensorFlow seeds, and (``deterministic``) deterministic kernels: same params,
    same numbers. Once on, TensorFlow keeps them on for the rest of the process."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def resolve_precision(precision: str) -> str:
    """``auto``: mixed_float16 where every visible GPU has tensor cores (compute capability 7.0 and up),
    float32 elsewhere (on a CPU, mixed_bfloat16 trained ResNet50 slower here: STACK-FACTS)."""
    if precision not in TRAIN_PRECISIONS:
        raise ValueError(f"train.precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    gpus = tf.config.list_physical_devices("GPU")
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) for gpu in gpus]
    return "mixed_float16" if capabilities and min(capabilities) >= (7, 0) else "float32"


@contextmanager
def precision_policy(precision: str):
    """Keras' global dtype policy set to ``precision`` while a model is built, and put back after: the
    layers keep the policy they were built with (a saved model records it), and the rest of the process
    (the next model, a test) is unaffected. Under mixed_float16 Keras' compile wraps the optimizer in
    loss scaling by itself, from the model's policy."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(resolve_precision(precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def optimizer(learning_rate: float, weight_decay: float = 0.0) -> keras.optimizers.Optimizer:
    """Adam, the original study's; with ``weight_decay``, AdamW (Loshchilov and Hutter 2019): each step
    also shrinks every weight by ``learning_rate * weight_decay`` of itself, apart from the gradient, except
    biases and BatchNorm's scales and offsets (as timm and most recipes exclude them)."""
    if not weight_decay:
        return keras.optimizers.Adam(learning_rate=learning_rate)
    adamw = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    adamw.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return adamw


def compile_model(model: keras.Model, learning_rate: float, jit_compile: bool | str = "auto",
                  weight_decay: float = 0.0) -> None:
    # Integer labels with the sparse form of categorical cross-entropy: the same loss as the
    # study's one-hot labels with categorical_crossentropy, without materialising one-hot arrays.
    model.compile(
        optimizer=optimizer(learning_rate, weight_decay),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """``model.predict`` on ``x`` in order, in batches of ``batch_size``, through a plain ``tf.data``
    pipeline. Keras' adapter for arrays maps its batches in parallel, and with deterministic kernels on
    that map logs ``E0000 ... use_unbounded_threadpool which is not in the op definition`` (the op
    definitions of TensorFlow 2.21's build lack an attribute its Python side sets); the numbers are
    the same either way. Under MirroredStrategy, predict (unlike evaluate) takes a last batch that the
    replicas split unevenly."""
    return model.predict(tf.data.Dataset.from_tensor_slices(x).batch(batch_size), verbose=0)


class BudgetedValidation(keras.callbacks.Callback):
    """Validation loss and accuracy every ``every`` epochs and after the last, scored as ``evaluate``
    will score the model: trainable BatchNorm layers recalibrated on the training images first. Every
    non-trainable variable the passes touch is put back afterwards: the moving statistics, and the
    random-generator states that a pass in training mode steps (a Dropout layer draws masks, an
    augmentation layer draws transforms), so training goes on bit for bit as without this callback.
    It adds ``val_loss`` and ``val_accuracy`` to the epoch's logs, for the callbacks after it (dvclive)
    and the history."""

    def __init__(self, train_x, val: Arrays, batch_size: int, every: int, last_epoch: int):
        super().__init__()
        self.train_x, self.val, self.batch_size = train_x, val, batch_size
        self.every, self.last_epoch = max(1, every), last_epoch
        self.scored: list[int] = []  # the epochs (0-based) with validation figures

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and epoch + 1 != self.last_epoch:
            return
        self.scored.append(epoch)
        state = self.model.non_trainable_variables  # moving statistics and random-generator states
        saved = [variable.numpy() for variable in state]
        recalibrate_batchnorm(self.model, self.train_x, self.batch_size)
        probabilities = predict(self.model, self.val.x)
        for variable, value in zip(state, saved):
            variable.assign(value)
        if logs is not None:
            losses = keras.losses.sparse_categorical_crossentropy(self.val.y, probabilities)
            logs["val_loss"] = float(keras.ops.convert_to_numpy(keras.ops.mean(losses)))
            logs["val_accuracy"] = float(np.mean(probabilities.argmax(axis=1) == self.val.y))


def epoch_batches(train: Arrays, batch_size: int, seed: int, first_epoch: int, epochs: int,
                  augment: Augment | None = None) -> tf.data.Dataset:
    """Batches of epochs ``first_epoch`` to ``epochs - 1``, each epoch in its own order drawn from
    ``(seed, epoch)``: an epoch sees the same batches whether the run started at epoch 0 or resumed
    at ``first_epoch``, which Keras' own ``shuffle=True`` does not promise. With ``augment``, each
    image of an epoch gets its own random change, drawn from ``(seed, epoch)`` and its position."""
    orders = np.stack([np.random.default_rng([seed, epoch]).permutation(len(train))
                       for epoch in range(first_epoch, epochs)])
    x, y = tf.constant(train.x), tf.constant(train.y)
    if augment is None or not augment.active:
        batches = tf.data.Dataset.from_tensor_slices(orders).flat_map(
            lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
        return batches.map(lambda index: (tf.gather(x, index), tf.gather(y, index))).prefetch(tf.data.AUTOTUNE)
    # One stateless seed per image and epoch, from a generator of its own (the orders' draws stay as
    # they were): the augmented images depend on (seed, epoch, position) only.
    seeds = np.stack([np.random.default_rng([seed, epoch, 1]).integers(0, 2**31, (len(train), 2))
                      for epoch in range(first_epoch, epochs)])
    transform = augmenter(train.x.shape[1:], augment)

    def epoch(order, image_seeds):
        images = tf.data.Dataset.from_tensor_slices((order, image_seeds)).map(
            lambda index, image_seed: (transform(tf.gather(x, index), image_seed), tf.gather(y, index)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return images.batch(batch_size)

    return tf.data.Dataset.from_tensor_slices((orders, seeds)).flat_map(epoch).prefetch(tf.data.AUTOTUNE)


def augmenter(image_shape: tuple[int, ...], augment: Augment):
    """The change ``augment`` makes to one image (H x W, or H x W x C) given a stateless seed: a flip
    with probability 1/2, then a shift of up to ``translate`` of each side in each direction, as a crop
    of the image padded with zeros (the classic CIFAR recipe: every shift is whole pixels, so pixel
    values stay as they were, uint8 included). ``tf.image``'s stateless functions, since Keras'
    random layers draw both of a translation's offsets from one seed when given one."""
    height, width = image_shape[:2]
    pad_h, pad_w = round(augment.translate * height), round(augment.translate * width)

    def transform(image, seed):
        image = image if len(image_shape) == 3 else image[..., tf.newaxis]
        flip_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        if augment.flip:
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        if pad_h or pad_w:
            padded = tf.pad(image, [[pad_h, pad_h], [pad_w, pad_w], [0, 0]])
            image = tf.image.stateless_random_crop(padded, tf.shape(image), crop_seed)
        return image if len(image_shape) == 3 else image[..., 0]

    return transform


class KeepBest(keras.callbacks.Callback):
    """The weights of ``target`` at the epoch with the best validation accuracy so far (the first of
    equals), from the figures ``BudgetedValidation`` puts in the epoch's logs: the validation split
    decides, never the test split. ``target`` is the whole model, also while a phase trains its head
    alone; ``restore`` puts the kept weights back. A checkpoint saves and loads this state, so a
    resumed run keeps the same epoch."""

    def __init__(self, target: keras.Model):
        super().__init__()
        self.target = target
        self.epoch, self.score, self.weights = None, -math.inf, None  # epoch: 0-based, through every phase

    def on_epoch_end(self, epoch, logs=None):
        score = (logs or {}).get("val_accuracy")
        if score is not None and score > self.score:
            self.epoch, self.score = epoch, score
            self.weights = [variable.numpy() for variable in self.target.weights]

    def restore(self) -> None:
        if self.weights is not None:
            for variable, value in zip(self.target.weights, self.weights):
                variable.assign(value)


class EpochCheckpoint(keras.callbacks.Callback):
    """The history of a fit, epoch by epoch, and (with a ``directory``) a checkpoint after every epoch
    to resume from: every variable of the model (random-generator states included) and of its
    optimizer, with the history so far, and the state of ``keep`` (the best epoch's weights).
    ``fingerprint`` names the inputs; a checkpoint of other inputs is discarded, never resumed."""

    def __init__(self, directory: Path | None, fingerprint: str = "", keep: KeepBest | None = None):
        super().__init__()
        self.directory, self.fingerprint, self.keep = (Path(directory) if directory else None), fingerprint, keep
        self.history: dict[str, list] = {"epoch": [], "val_epoch": []}

    def restore(self, model: keras.Model) -> int:
        """Load the checkpoint into ``model`` (compiled) and return the epoch to start at; 0 if none."""
        state = self.directory / "state.json" if self.directory else None
        if state is None or not state.exists():
            return 0
        saved = json.loads(state.read_text())
        if saved["fingerprint"] != self.fingerprint:
            log.info("discarding checkpoint %s: made from other inputs", self.directory)
            shutil.rmtree(self.directory)
            return 0
        model.optimizer.build(model.trainable_variables)
        with np.load(self.directory / "variables.npz") as arrays:
            for i, variable in enumerate(self._variables()):
                variable.assign(arrays[f"v{i}"])
            if self.keep is not None and saved.get("kept") is not None:
                self.keep.epoch, self.keep.score = saved["kept"]
                self.keep.weights = [arrays[f"k{i}"] for i in range(len(self.keep.target.weights))]
        self.history = saved["history"]
        next_epoch = self.history["epoch"][-1] + 1
        log.info("resuming at epoch %d from checkpoint %s", next_epoch + 1, self.directory)
        return next_epoch

    def _variables(self) -> list:
        return [*self.model.variables, *self.model.optimizer.variables]

    def on_epoch_end(self, epoch, logs=None):
        self.history["epoch"].append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if "val_loss" in (logs or {}):
            self.history["val_epoch"].append(epoch)
        if self.directory is None:
            return
        kept = self.keep.weights if self.keep is not None and self.keep.weights is not None else []
        with atomic_dir(self.directory) as tmp:
            np.savez(tmp / "variables.npz", **{f"v{i}": v.numpy() for i, v in enumerate(self._variables())},
                     **{f"k{i}": value for i, value in enumerate(kept)})
            (tmp / "state.json").write_text(json.dumps({
                "fingerprint": self.fingerprint, "history": self.history,
                "kept": [self.keep.epoch, self.keep.score] if kept else None}))


@dataclass
class Resume:
    """Where a run keeps its checkpoints, and the fingerprint of its inputs."""

    directory: Path
    fingerprint: str

    def checkpoint(self, phase: str, keep: KeepBest | None = None) -> EpochCheckpoint:
        return EpochCheckpoint(self.directory / phase, self.fingerprint, keep)


def _fit(model: keras.Model, train: Arrays, val: Arrays, config: TrainConfig, epochs: int, initial_epoch: int,
         callbacks, seed: int, checkpoint: EpochCheckpoint, augment: Augment | None = None) -> dict:
    checkpoint.set_model(model)
    initial_epoch = max(initial_epoch, checkpoint.restore(model))
    if initial_epoch < epochs:
        validation = BudgetedValidation(train.x, val, config.batch_size, config.validation.every, epochs)
        model.fit(
            epoch_batches(train, config.batch_size, seed, initial_epoch, epochs, augment),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=math.ceil(len(train) / config.batch_size),
            shuffle=False,  # epoch_batches shuffles
            verbose=2,
            # validation first: the others see its figures; the checkpoint (with the best epoch's weights)
            # before any that may fail
            callbacks=[validation, *([checkpoint.keep] if checkpoint.keep else []), checkpoint, *callbacks],
        )
    return checkpoint.history


def _extend(history: dict, more: dict) -> dict:
    for key, values in more.items():
        history.setdefault(key, []).extend(values)
    return history


def set_fine_tuning(model: keras.Model, fine_tune: str, backbone_name: str = DEFAULT_BACKBONE) -> None:
    """Unfreeze the backbone, whole (``all``) or from one of its stages upwards (ResNet50's ``convN``,
    EfficientNet's ``blockN``); the head stays trainable."""
    first = first_stage(backbone_name, fine_tune)
    backbone = model.get_layer(BACKBONE)
    backbone.trainable = True
    for layer in backbone.layers:  # each layer explicitly: a model's flag does not reset its layers'
        layer.trainable = stage_of(backbone_name, layer.name) >= first


def feature_extractor(model: keras.Model) -> keras.Model:
    """Everything below the head: input preprocessing, backbone and pooling."""
    return keras.Model(model.inputs, model.get_layer(FEATURES).output)


def train_head_on_features(model: keras.Model, data: Splits, config: TrainConfig, epochs: int, seed: int,
                           checkpoint: EpochCheckpoint, callbacks=()) -> dict:
    """The frozen phase, paying one backbone pass: features of the training and validation images
    are computed once (inference mode), and the head alone trains on them."""
    extractor = feature_extractor(model)
    features = {name: Arrays(predict(extractor, part.x, 256), part.y)
                for name, part in (("train", data.train), ("val", data.val))}
    head = model.get_layer(HEAD)
    head_model = keras.Sequential([keras.Input(features["train"].x.shape[1:]), head])
    compile_model(head_model, config.learning_rate, config.jit_compile, config.weight_decay)
    return _fit(head_model, features["train"], features["val"], config, epochs, 0, callbacks, seed, checkpoint)


def train_model(name: str, data: Splits, config: TrainConfig, seed: int, backbone_weights: Path | None = None,
                callbacks: list[keras.callbacks.Callback] = (),
                resume: Resume | None = None) -> tuple[keras.Model, dict]:
    """Build ``name``, train it on ``data.train`` with validation on ``data.val``; return model and history.

    A model registered as pretrained loads ``backbone_weights`` and follows ``config.schedule``: its
    first ``frozen_epochs`` train the head on cached features, the rest fine-tune at a lower learning
    rate. Every other model trains all its weights for all ``config.epochs``. Both count one epoch
    per pass over the training images, so the arms get the same budget.

    With ``resume``, each phase checkpoints after every epoch and a run killed midway goes on from its
    last epoch, to the same model as an uninterrupted run (every epoch's batches and random draws
    depend on the seed and the epoch only).
    """
    def checkpoint(phase: str, keep: KeepBest | None) -> EpochCheckpoint:
        return resume.checkpoint(phase, keep) if resume else EpochCheckpoint(None, keep=keep)

    seed_everything(seed, config.deterministic)
    with distribution(config.distribute).scope():  # the model, its optimizer and every fit in it
        return _train_model(name, data, config, seed, backbone_weights, callbacks, checkpoint)


def _train_model(name: str, data: Splits, config: TrainConfig, seed: int, backbone_weights: Path | None,
                 callbacks, checkpoint) -> tuple[keras.Model, dict]:
    data = Splits(data.train, stratified_part(data.val, config.validation.examples_per_class), data.test,
                  data.class_names)
    with precision_policy(config.precision):
        model = build_model(name, data.train.x.shape[1:], len(data.class_names), data.train.x.dtype,
                            **config.model_options)
    learning_rate, history, start = config.learning_rate, {}, 0
    keep = KeepBest(model) if config.keep == "best" else None
    if model_spec(name).pretrained:
        if backbone_weights is None:
            raise ValueError(f"{name} starts from pretrained weights, but none were given")
        model.get_layer(BACKBONE).load_weights(backbone_weights)
        frozen = config.epochs if config.schedule.fine_tune == "none" else config.schedule.frozen_epochs
        start = min(frozen, config.epochs)
        log.info("%s: %d frozen epochs on cached features, then fine-tuning %s", name, start,
                 config.schedule.fine_tune)
        if start:
            _extend(history, train_head_on_features(model, data, config, start, seed, checkpoint("head", keep),
                                                    callbacks))
        if config.epochs > start:
            set_fine_tuning(model, config.schedule.fine_tune, config.model_options.get("backbone", DEFAULT_BACKBONE))
            learning_rate *= config.schedule.finetune_lr_factor
        else:  # the budget ends with the frozen phase: the saved model says its backbone never trained
            model.get_layer(BACKBONE).trainable = False
    # after any change of `trainable`, which needs a recompile
    compile_model(model, learning_rate, config.jit_compile, config.weight_decay)
    log.info("training %s (seed %d) on %d images for %d epochs", name, seed, len(data.train), config.epochs)
    if config.epochs > start:
        _extend(history, _fit(model, data.train, data.val, config, config.epochs, start, callbacks, seed,
                              checkpoint("model", keep), config.augment))
    history["kept_epoch"] = config.epochs - 1
    if keep is not None:
        keep.restore()
        history["kept_epoch"] = keep.epoch
        if keep.epoch < start:  # an epoch of the head phase: its backbone never trained, as the model must say,
            model.get_layer(BACKBONE).trainable = False  # or evaluate would recalibrate statistics it never used
        log.info("%s (seed %d): kept epoch %d of %d, validation accuracy %.4f", name, seed, keep.epoch + 1,
                 config.epochs, keep.score)
    return model, history


def train_choosing_learning_rate(name: str, data: Splits, config: TrainConfig, seed: int,
                                 backbone_weights: Path | None = None, callbacks: list[keras.callbacks.Callback] = (),
                                 resume: Resume | None = None) -> tuple[keras.Model, dict, float]:
    """``train_model``, or with ``config.learning_rate_grid`` one run per candidate rate and the one
    with the best validation accuracy at its kept epoch (recalibrated, on the validation budget; never
    the test split) kept. Returns the model, its history and its rate. ``callbacks`` see the plain run only:
    with a grid, log the returned history instead."""
    if not config.learning_rate_grid:
        model, history = train_model(name, data, config, seed, backbone_weights, callbacks, resume)
        return model, history, config.learning_rate
    best = None
    for rate in config.learning_rate_grid:
        candidate = replace(resume, directory=resume.directory / f"lr{rate:g}") if resume else None
        model, history = train_model(name, data, replace(config, learning_rate=rate), seed, backbone_weights,
                                     resume=candidate)
        score = history["val_accuracy"][history["val_epoch"].index(history["kept_epoch"])]
        log.info("%s (seed %d): learning rate %g, validation accuracy %.4f at its kept epoch", name, seed, rate, score)
        if best is None or score > best[0]:
            best = (score, model, history, rate)
    log.info("%s (seed %d): learning rate %g chosen on validation", name, seed, best[3])
    return best[1], best[2], best[3]


def save_model(model: keras.Model, path: Path) -> None:
    """Save for evaluation and later use, to a temporary ``.keras`` name, then rename: a crash never
    leaves half a model. A fresh optimizer of the same configuration replaces the trained one: Adam's
    two moments per weight would triple the file (a ResNet50: 283 MB instead of 95 MB)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    optimizer = model.optimizer.__class__.from_config(model.optimizer.get_config())
    model.compile(optimizer=optimizer, loss=model.loss, metrics=["accuracy"])
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    without_timestamps(tmp)
    tmp.replace(path)


def without_timestamps(path: Path) -> None:
    """Rewrite a ``.keras`` file (a zip) without what differs between two saves of the same weights: the
    zip entries' times, ``metadata.json``'s ``date_saved`` (Keras writes it but never reads it), and in
    ``config.json`` the ``shared_object_id`` of objects that several layers share (a ResNet's dtype
    policy), which is the object's address in the saving process; renumbered in order of appearance, as
    loading only matches them with each other. The same weights then give the same bytes, so a re-run
    that changed nothing leaves ``dvc.lock`` as it was."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
            target.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data,
                            compress_type=info.compress_type)


def _renumber_shared_objects(node, numbers: dict):
    if isinstance(node, dict):
        return {key: (numbers.setdefault(value, len(numbers) + 1) if key == "shared_object_id"
                      else _renumber_shared_objects(value, numbers)) for key, value in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_objects(value, numbers) for value in node]
    return node
