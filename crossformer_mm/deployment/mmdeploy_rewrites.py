"""Registers :data:`crossformer_mm.deployment.rewrites.MMDEPLOY_REWRITES` with mmdeploy's
``FUNCTION_REWRITER`` (every backend). Imported by the deploy configs of ``configs/deploy``
through ``custom_imports``; needs mmdeploy, so nothing else imports it."""

from mmdeploy.core import FUNCTION_REWRITER

from .rewrites import MMDEPLOY_REWRITES

for func_name, rewrite in MMDEPLOY_REWRITES.items():
    FUNCTION_REWRITER.register_rewriter(func_name=func_name, backend='default')(rewrite)
