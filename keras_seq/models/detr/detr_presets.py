"""Architecture presets of `DETRBackbone` / `DETRObjectDetector` (random weights; nothing is
downloaded).

Sizes from Carion et al. (2020), Section 4 and Appendix A.3: ResNet-50 image encoder, 6 encoder
and 6 decoder layers of width 256 with 8 heads and feed-forward width 2048, dropout 0.1, 100
object queries and COCO's 91 class ids (the original's `num_classes`).
"""

DETR_PRESETS = {
    "detr_resnet50": {
        "description": (
            "DETR-R50: ResNet-50 (frozen batch norms), transformer 6 + 6 layers of width "
            "256, 100 queries, 91 classes (transformer and heads: 18,069,856 parameters)."
        ),
        "config": {
            "hidden_dim": 256,
            "num_queries": 100,
            "num_encoder_layers": 6,
            "num_decoder_layers": 6,
            "num_heads": 8,
            "intermediate_dim": 2048,
            "dropout": 0.1,
        },
        "task_config": {"num_classes": 91},
    },
}
