"""The image models the fake knows: ratios, sizes, pixel tables, limits."""



RATIOS_10 = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9",
             "21:9"]
RATIOS_14 = RATIOS_10 + ["1:4", "4:1", "1:8", "8:1"]

# The image-generation guide's pixel tables.  Ratio -> (w, h) per size.
_DIMS_2_5 = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832),
    "3:4": (864, 1184), "4:3": (1184, 864), "4:5": (896, 1152),
    "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768),
    "21:9": (1536, 672),
}
_DIMS_3_1K = {
    "1:1": (1024, 1024), "1:4": (512, 2048), "1:8": (384, 3072),
    "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200),
    "4:1": (2048, 512), "4:3": (1200, 896), "4:5": (928, 1152),
    "5:4": (1152, 928), "8:1": (3072, 384), "9:16": (768, 1376),
    "16:9": (1376, 768), "21:9": (1584, 672),
}
_DIMS_3_512 = {
    "1:1": (512, 512), "1:4": (256, 1024), "1:8": (192, 1536),
    "2:3": (424, 632), "3:2": (632, 424), "3:4": (448, 600),
    "4:1": (1024, 256), "4:3": (600, 448), "4:5": (464, 576),
    "5:4": (576, 464), "8:1": (1536, 192), "9:16": (384, 688),
    "16:9": (688, 384),
    # The doc prints 792x168, an obvious typo (that is 33:7); we use 792x336.
    "21:9": (792, 336),
}


def _scaled(table, factor):
    """Return the 1K table scaled by an integer factor (2K = x2, 4K = x4)."""
    return {r: (w * factor, h * factor) for r, (w, h) in table.items()}


class ModelSpec:
    """What one image model accepts and how it answers."""

    def __init__(self, name, ratios, sizes, dims, image_tokens, max_images,
                 gemini3):
        self.name = name
        self.ratios = ratios          # accepted aspectRatio strings
        self.sizes = sizes            # accepted imageSize strings (None: none)
        self.dims = dims              # size -> ratio -> (w, h)
        self.image_tokens = image_tokens  # size -> output image tokens
        self.max_images = max_images  # max input images in user turns
        self.gemini3 = gemini3        # thinking, signatures, JPEG output


def _build_models():
    """Build the model table (preview and stable ids share the rules)."""
    pro_dims = {"1K": {r: _DIMS_3_1K[r] for r in RATIOS_10}}
    pro_dims["2K"] = _scaled(pro_dims["1K"], 2)
    pro_dims["4K"] = _scaled(pro_dims["1K"], 4)
    flash31_dims = {"512": dict(_DIMS_3_512), "1K": dict(_DIMS_3_1K),
                    "2K": _scaled(_DIMS_3_1K, 2), "4K": _scaled(_DIMS_3_1K, 4)}
    specs = [
        ModelSpec("gemini-2.5-flash-image", RATIOS_10, None,
                  {"1K": _DIMS_2_5}, {"1K": 1290}, 3, False),
        ModelSpec("gemini-3-pro-image-preview", RATIOS_10, ["1K", "2K", "4K"],
                  pro_dims, {"1K": 1120, "2K": 1120, "4K": 2000}, 14, True),
        ModelSpec("gemini-3.1-flash-image-preview", RATIOS_14,
                  ["512", "1K", "2K", "4K"], flash31_dims,
                  {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}, 14, True),
    ]
    models = {s.name: s for s in specs}
    models["gemini-3-pro-image"] = models["gemini-3-pro-image-preview"]
    models["gemini-3.1-flash-image"] = models["gemini-3.1-flash-image-preview"]
    return models


MODELS = _build_models()

INPUT_MIME_TYPES = {"image/png", "image/jpeg", "image/webp", "image/heic",
                    "image/heif"}
