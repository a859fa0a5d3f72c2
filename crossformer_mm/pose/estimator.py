"""Bottom-up pose estimator whose multi-scale test receives the pyramid."""

from typing import List, Union

from mmengine.registry import MODELS
from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.utils.typing import ForwardResults, OptSampleList
from torch import Tensor


@MODELS.register_module()
class MultiScaleBottomupPoseEstimator(BottomupPoseEstimator):
    """mmpose's ``BottomupPoseEstimator`` with a working multi-scale test.

    mmpose 1.3.2's ``BasePoseEstimator.forward`` stacks list inputs into one
    tensor, so the image pyramid of ``test_cfg.multiscale_test`` (one
    (B, C, H_s, W_s) tensor per scale, from
    :class:`MultiScalePoseDataPreprocessor`) fails before it reaches
    ``BottomupPoseEstimator.predict``, which expects exactly that list. Here a
    pyramid goes to ``predict`` unstacked; everything else is the parent's.
    """

    def forward(
        self,
        inputs: Union[Tensor, List[Tensor]],
        data_samples: OptSampleList = None,
        mode: str = 'tensor',
    ) -> ForwardResults:
        if (
            mode == 'predict'
            and isinstance(inputs, list)
            and self.test_cfg.get('multiscale_test', False)
        ):
            if self.metainfo is not None:
                for data_sample in data_samples:
                    data_sample.set_metainfo(self.metainfo)
            return self.predict(inputs, data_samples)
        return super().forward(inputs, data_samples, mode)
