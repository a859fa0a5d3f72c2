from . import backbones, layers  # noqa: F401  (importing registers the modules)
