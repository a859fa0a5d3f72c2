# mmdeploy: RetinaNet / Mask R-CNN with CrossFormer, ONNX Runtime, static 800x1216.
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(output_names=['dets', 'labels'], input_shape=[1216, 800])
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1,
    ),
)
