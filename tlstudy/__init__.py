"""Does a transfer-learned network beat the same network trained from scratch on little data?

The library behind the DVC stages in ``stages/``: datasets, models, training, evaluation, report.
"""

import os

# TensorFlow's oneDNN kernels. TensorFlow 2.21 turns them on by itself only on CPUs with AVX-512
# VNNI/BF16 or AMX; on an AVX2-only CPU it leaves them off, and ResNet50 at 32x32 trained 4.3x
# slower here (11.6 against 49.5 images/s, AMD EPYC with AVX2). On everywhere, unless the user
# chose otherwise; it must be set before TensorFlow is first imported, hence here.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
