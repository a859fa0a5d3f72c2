"""Interpreter-start hook of crossformer_mm: mmpose without torchvision.

``mmpose.visualization`` imports ``mmpose.visualization.simcc_vis``, whose
first line imports torchvision; ``mmpose.apis`` (``init_model``,
``inference_bottomup``, ``MMPoseInferencer``) imports ``mmpose.visualization``.
That is the only import of torchvision on mmpose's import paths (the other
uses in mmpose, mmdet, mmengine and mmcv import it inside functions that the
pose configs of this package never call). Where torchvision cannot be imported
(CPU torch 2.13 has no matching torchvision build; PyPI's CUDA wheels raise at
import), ``from mmpose.apis import init_model`` therefore fails unless
``crossformer_mm.pose`` was imported first, which provides that one module
(:func:`crossformer_mm.compat.mmpose_without_torchvision`).

This module makes the order not matter. The ``crossformer_mm-hook.pth`` file
(written into site-packages by ``setup.py``'s build for wheels and by
``tools/install.sh`` for the editable install; :func:`write_pth`) imports it at
interpreter start and :func:`install` puts one finder first on
``sys.meta_path``. The finder costs one string comparison per import and
imports nothing at start (standard library only, no torch, no mmengine); it
acts only when ``mmpose.visualization.simcc_vis`` is imported and torchvision
cannot be imported, and then loads the stand-in of
:func:`crossformer_mm.compat.simcc_vis_stand_in` instead (which imports
``crossformer_mm``, and so applies its compatibility patches). Where
torchvision imports, the real module loads and nothing of crossformer_mm is
imported.

Opt out: ``CROSSFORMER_MM_NO_HOOK=1`` in the environment, or delete the
``.pth`` file.
"""
import os
import sys

#: The module of mmpose that imports torchvision at import time.
TRIGGER = 'mmpose.visualization.simcc_vis'
#: The file in site-packages that installs the hook at interpreter start.
PTH_NAME = 'crossformer_mm-hook.pth'
#: Its one line: install the hook if the module is still installed (a stale
#: file left by an uninstalled editable install then does nothing).
PTH_LINE = ("import importlib.util; importlib.util.find_spec('_crossformer_mm_hook') "
            "and __import__('_crossformer_mm_hook').install()\n")


def torchvision_importable() -> bool:
    """Whether ``import torchvision`` works here (a build for another torch
    raises at import: "operator torchvision::nms does not exist")."""
    if 'torchvision' in sys.modules:
        return True
    import importlib.util
    if importlib.util.find_spec('torchvision') is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or RuntimeError of a mismatched build
        for name in [m for m in sys.modules
                     if m == 'torchvision' or m.startswith('torchvision.')]:
            del sys.modules[name]
        return False
    return True


class _StandInLoader:
    """Loads the stand-in module of :mod:`crossformer_mm.compat`."""

    @staticmethod
    def create_module(spec):
        from crossformer_mm.compat import simcc_vis_stand_in
        return simcc_vis_stand_in()

    @staticmethod
    def exec_module(module) -> None:
        pass


class MMPoseWithoutTorchvisionFinder:
    """``sys.meta_path`` finder that answers only for :data:`TRIGGER`, and only
    where torchvision cannot be imported (see the module docstring)."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname != TRIGGER or torchvision_importable():
            return None
        from importlib.machinery import ModuleSpec
        return ModuleSpec(fullname, _StandInLoader(),
                          origin='crossformer_mm.compat.simcc_vis_stand_in')


def installed() -> bool:
    """Whether the finder is on ``sys.meta_path``."""
    return any(isinstance(f, MMPoseWithoutTorchvisionFinder)
               for f in sys.meta_path)


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), unless
    ``CROSSFORMER_MM_NO_HOOK`` is set to a non-empty value."""
    if os.environ.get('CROSSFORMER_MM_NO_HOOK') or installed():
        return
    sys.meta_path.insert(0, MMPoseWithoutTorchvisionFinder())


def write_pth(site_dir: str) -> str:
    """Write :data:`PTH_NAME` into ``site_dir`` (a site-packages folder);
    return its path."""
    path = os.path.join(site_dir, PTH_NAME)
    with open(path, 'w') as f:
        f.write(PTH_LINE)
    return path


if __name__ == '__main__':  # python _crossformer_mm_hook.py SITE_DIR
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit('usage: python _crossformer_mm_hook.py SITE_PACKAGES_DIR')
    print(f'wrote {write_pth(sys.argv[1])}')
