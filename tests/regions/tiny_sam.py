"""A tiny SAM (real ``segment_anything.modeling`` classes, random weights) for tests and the benchmark.

Not a model: it exercises the real SamAutomaticMaskGenerator code path without a checkpoint.
"""

from __future__ import annotations

from functools import partial

import torch


def build_tiny_sam(*, seed: int = 0, img_size: int = 64):
    """A SAM with the real architecture classes, tiny sizes and random weights (tests only)."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    dim, patch = 32, 16
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=img_size, patch_size=patch, embed_dim=dim, depth=2, num_heads=2,
                                      mlp_ratio=2.0, out_chans=dim, qkv_bias=True,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                                      window_size=2, global_attn_indexes=(1,)),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(img_size // patch, img_size // patch),
                                     input_image_size=(img_size, img_size), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
                                 transformer_dim=dim, iou_head_depth=1, iou_head_hidden_dim=16),
    )
    return sam.eval()
