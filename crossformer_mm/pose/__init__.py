"""HigherHRNet for mmpose 1.x: head, two-resolution AE codec, losses, grouping,
training mask and test-time transforms, a multi-scale capable estimator and a
neck for pyramid backbones (importing registers them).

Pose configs import it with ``custom_imports=dict(imports=['crossformer_mm.pose'])``.
"""
from ..compat import mmpose_without_torchvision

mmpose_without_torchvision()  # before anything below imports mmpose

from . import codec, data_preprocessor, estimator, head  # noqa: F401,E402
from . import loss, neck, transforms  # noqa: F401,E402
