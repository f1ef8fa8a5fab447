"""Model-free parts of the box-prompted mask generator: proposals, stability, selection."""

import numpy as np
import pytest
import torch

from ratmir.regions.box_prompts import (
    dedupe_boxes, grid_boxes, label_boxes, mask_boxes, oversegment_boxes, select_masks, stability_score,
)


def test_grid_boxes_cover_the_image_at_each_scale():
    boxes = grid_boxes(height=10, width=20, divisions=(1, 2))
    assert boxes.shape == (1 + 4, 4)
    assert boxes[0].tolist() == [0, 0, 20, 10] and boxes[1].tolist() == [0, 0, 10, 5]
    assert boxes[-1].tolist() == [10, 5, 20, 10]


def test_label_boxes_and_min_area():
    labels = np.ones((8, 8), np.int64)
    labels[2:4, 5:8] = 2  # 6 px
    labels[7, 0] = 3  # 1 px: dropped
    boxes = label_boxes(labels, min_area=2)
    assert boxes.tolist() == [[0, 0, 8, 8], [5, 2, 8, 4]]
    assert label_boxes(labels, min_area=2, max_area=10).tolist() == [[5, 2, 8, 4]]  # label 1 (57 px) too big


def test_oversegment_boxes_find_a_bright_square():
    image = np.zeros((32, 32), np.float32)
    image[8:20, 10:24] = 1.0
    boxes = oversegment_boxes(image, scales=(100.0,), sigma=0.0, min_area=4)
    assert [10, 8, 24, 20] in boxes.tolist()


def test_dedupe_keeps_the_first_of_near_duplicates():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 11], [20, 20, 30, 30]], dtype=torch.float32)
    assert dedupe_boxes(boxes, iou_thresh=0.8).tolist() == [[0, 0, 10, 10], [20, 20, 30, 30]]
    assert dedupe_boxes(boxes, iou_thresh=0.95).shape[0] == 3


def test_stability_score_and_mask_boxes():
    logits = torch.full((2, 6, 6), -5.0)
    logits[0, 1:3, 1:4] = 5.0  # sharp edges: stable
    logits[1, :, :] = torch.linspace(-3, 3, 6)[None, :]  # a ramp: the mask moves with the threshold
    score = stability_score(logits)
    assert score[0] == 1.0 and 0 < score[1] < 1
    assert mask_boxes(logits > 0).tolist() == [[1, 1, 4, 3], [3, 0, 6, 6]]
    assert mask_boxes(torch.zeros(1, 4, 4, dtype=torch.bool)).tolist() == [[0, 0, 0, 0]]


def test_select_masks_filters_then_suppresses_overlaps():
    logits = torch.full((4, 20, 20), -5.0)
    logits[0, 2:10, 2:10] = 5.0  # good
    logits[1, 2:10, 2:11] = 5.0  # near-duplicate of 0 with a lower score -> NMS
    logits[2, 12:18, 12:18] = 5.0  # good but low predicted IoU -> filtered
    logits[3] = 5.0  # the whole image -> above max_area_fraction
    iou = torch.tensor([0.9, 0.8, 0.2, 0.9])
    keep = select_masks(logits, iou, pred_iou_thresh=0.5, stability_thresh=0.5, min_area=4,
                        max_area_fraction=0.9, nms_thresh=0.7)
    assert keep.tolist() == [0]
    none = select_masks(logits, iou, pred_iou_thresh=0.95, stability_thresh=0.5, min_area=4,
                        max_area_fraction=0.9, nms_thresh=0.7)
    assert none.numel() == 0


@pytest.mark.parametrize("divisions", [(), (3,)])
def test_grid_boxes_count(divisions):
    assert grid_boxes(height=5, width=5, divisions=divisions).shape == (sum(n * n for n in divisions), 4)
