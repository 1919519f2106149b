"""Benchmarks of the project's speed and memory (docs/performance.md)."""

# First: importing tlstudy switches TensorFlow's oneDNN kernels on, which only works before TensorFlow
# is loaded (tlstudy/__init__.py); a benchmark that imported keras first would measure without them.
import tlstudy  # noqa: F401
