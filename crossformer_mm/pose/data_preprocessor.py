"""Data preprocessor that batches image pyramids for multi-scale testing."""

from mmengine.registry import MODELS
from mmpose.models.data_preprocessors import PoseDataPreprocessor


@MODELS.register_module()
class MultiScalePoseDataPreprocessor(PoseDataPreprocessor):
    """``PoseDataPreprocessor`` that also accepts image pyramids.

    When every sample's input is a list of (C, H_s, W_s) tensors (one per
    scale, from :class:`PackMultiScalePoseInputs`), mmengine's
    ``pseudo_collate`` hands them over per scale (``inputs[s][b]``); each
    scale is then normalised and batched separately and ``inputs`` becomes a
    list of (B, C, H_s, W_s) tensors, main scale first, as
    ``BottomupPoseEstimator`` expects with ``multiscale_test``. Single images
    are handled by the parent unchanged. The meta information
    (``batch_input_shape``, ``pad_shape``) describes the main scale.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if not inputs or not isinstance(inputs[0], (list, tuple)):
            return super().forward(data, training)
        batch_size = len(inputs[0])
        if any(len(scale) != batch_size for scale in inputs):
            raise ValueError('every sample of a multi-scale batch needs the same number of scales')
        scaled = []
        for scale_inputs in reversed(inputs):
            out = super().forward(
                dict(inputs=list(scale_inputs), data_samples=data['data_samples']), training
            )
            scaled.insert(0, out['inputs'])
        return dict(inputs=scaled, data_samples=out['data_samples'])
