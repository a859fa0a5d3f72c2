from . import backbones, layers, pose  # noqa: F401  (importing registers the modules)
