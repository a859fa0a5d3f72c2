"""HigherHRNet for mmpose 1.x: head, two-resolution AE codec, losses, grouping,
training mask and test-time transforms, a multi-scale capable estimator and a
neck for pyramid backbones (importing registers them).

Pose configs import it with ``custom_imports=dict(imports=['crossformer_mm.pose'])``.
"""

from . import codec, data_preprocessor, estimator, head, loss, neck, transforms  # noqa: F401
