"""Let mmpose 1.3.2 import its visualizers where torchvision cannot be imported.

``mmpose.visualization`` imports ``SimCCVisualizer``, whose module imports
``torchvision.transforms.ToPILImage``; every stock mmpose run builds a
``PoseLocalVisualizer`` and so imports that package. There is no torchvision
build for CPU torch 2.13 (the 0.28.0 wheel fails at import with
"operator torchvision::nms does not exist"), so without this, stock mmpose
tools cannot start on this stack.

When torchvision is not importable, the ``simcc_vis`` module is provided with
a ``SimCCVisualizer`` that raises a clear error if it is ever used (it only
draws SimCC heatmaps; nothing in this package uses it). Everything else of
mmpose is untouched. With a working torchvision this does nothing.
"""
import sys
import types

_MODULE = 'mmpose.visualization.simcc_vis'


class SimCCVisualizer:
    """Stand-in for mmpose's SimCC heatmap visualizer (needs torchvision)."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError(
            "mmpose's SimCCVisualizer needs torchvision, which cannot be imported with this "
            'torch build; install a torchvision that matches your torch to use it')


def torchvision_importable() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or RuntimeError from a build for another torch
        for name in [m for m in sys.modules if m == 'torchvision' or m.startswith('torchvision.')]:
            del sys.modules[name]
        return False
    return True


def allow_mmpose_visualization_without_torchvision() -> None:
    """Provide ``mmpose.visualization.simcc_vis`` when torchvision is unusable."""
    if _MODULE in sys.modules or torchvision_importable():
        return
    module = types.ModuleType(_MODULE)
    module.__doc__ = __doc__
    module.SimCCVisualizer = SimCCVisualizer
    sys.modules[_MODULE] = module
