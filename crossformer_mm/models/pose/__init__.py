"""HigherHRNet for mmpose 1.x: head, two-resolution AE codec, losses, grouping,
test-time transforms and a neck for pyramid backbones (importing registers
them)."""
from . import codec, data_preprocessor, head, loss, neck, transforms  # noqa: F401
