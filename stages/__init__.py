"""DVC stages: one module each, a thin ``main()`` that parses arguments and params and calls ``tlstudy``."""

import tlstudy  # noqa: F401  (first: it switches TensorFlow's oneDNN kernels on before anything loads TensorFlow)
