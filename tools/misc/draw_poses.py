"""Draw the skeletons that a pose config + checkpoint predict on an image.

    python tools/misc/draw_poses.py IMAGE CONFIG CHECKPOINT --out PNG
        [--ann-file COCO_STYLE_JSON] [--kpt-thr 0.3] [--score-thr 0.2] [--device cpu]

The image (any size) goes through ``mmpose.apis.init_model`` /
``inference_bottomup``; the picture shows the ground truth on the left (from
``--ann-file``, a COCO / CrowdPose keypoint file that lists the image by its
file name; otherwise the plain image) and the predicted people on the right,
drawn by mmpose's ``PoseLocalVisualizer`` with the dataset's own skeleton and
colours (the checkpoint's or the config's dataset meta). The people found
(keypoints and scores) are printed. Logic: :mod:`crossformer_mm.pose.visualization`.
"""

import argparse

from mmpose.apis import init_model

from crossformer_mm.pose.visualization import predict_and_draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument(
        '--ann-file',
        default=None,
        help='keypoint annotations holding the image (ground truth panel)',
    )
    parser.add_argument(
        '--kpt-thr', type=float, default=0.3, help='joints below this score are not drawn'
    )
    parser.add_argument(
        '--score-thr', type=float, default=0.2, help='people below this person score are not drawn'
    )
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()

    import cv2

    model = init_model(args.config, args.checkpoint, device=args.device)
    picture, (sample,) = predict_and_draw(
        model, [args.image], args.ann_file, args.kpt_thr, args.score_thr, columns=1
    )
    if not cv2.imwrite(args.out, picture):
        raise SystemExit(f'cannot write {args.out!r}: give a writable path ending in .png')
    inst = sample.pred_instances
    shown = int((inst.bbox_scores >= args.score_thr).sum())
    print(
        f'{len(inst.bbox_scores)} people found ({shown} with person score >= '
        f'{args.score_thr} drawn), keypoints {tuple(inst.keypoints.shape)} -> {args.out}'
    )
    for i in range(min(len(inst.bbox_scores), 5)):
        print(
            f'  person {i}: score {inst.bbox_scores[i]:.3f}, first joints '
            f'{inst.keypoints[i][:3].round(1).tolist()}'
        )


if __name__ == '__main__':
    main()
