"""HigherHRNet for mmpose 1.x: head, two-resolution AE codec, losses, grouping,
training mask and test-time transforms, a multi-scale capable estimator and a
neck for pyramid backbones (importing registers them)."""
from . import codec, data_preprocessor, estimator, head  # noqa: F401
from . import loss, neck, transforms  # noqa: F401
