"""One training run, on two logical CPU devices with ``train.distribute: mirrored`` or on one: a
separate process, since devices are fixed when TensorFlow starts.

    python -m tests.distributed mirrored|none MODEL SEED   # prints the replicas and the test accuracy
    python -m tests.distributed mirrored|none MODEL SEED OUT.npz   # one step, no dropout: its weights
"""

import sys

import numpy as np
import tensorflow as tf

from tests.test_models import tiny_splits
from tlstudy.data import Arrays, Splits
from tlstudy.training import TrainConfig, distribution, train_model


def noisy_splits(seed: int = 0) -> Splits:
    """The tiny bands, a quarter of the labels replaced at random: accuracy well below 1."""
    data = tiny_splits(n=900, seed=seed)
    rng = np.random.default_rng(seed)
    y = data.train.y.copy()
    flip = rng.random(len(y)) < 0.25
    y[flip] = rng.integers(0, 3, flip.sum())
    x = data.train.x + rng.normal(0, 2.0, data.train.x.shape).astype(np.float32)
    train, test = Arrays(x[:600], y[:600]), Arrays(x[600:], y[600:])
    return Splits(train, test, test, data.class_names)


def main() -> None:
    distribute, model, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if distribute == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    data = noisy_splits()
    if len(sys.argv) > 4:  # four steps of half the training images, no dropout: nothing random but the init
        config = TrainConfig(epochs=2, batch_size=len(data.train) // 2, model_options={"dropout": 0.0},
                             distribute=distribute)
        trained, _ = train_model(model, data, config, seed=seed)
        np.savez(sys.argv[4], *trained.get_weights())
        print(trained.distribute_strategy.num_replicas_in_sync)  # the strategy the model trained under
        return
    config = TrainConfig(epochs=3, batch_size=32, distribute=distribute)
    trained, _ = train_model(model, data, config, seed=seed)
    accuracy = float(np.mean(trained.predict(data.test.x, verbose=0).argmax(axis=1) == data.test.y))
    print(distribution(distribute).num_replicas_in_sync, accuracy)


if __name__ == "__main__":
    main()
