"""Model files built by bench/quantize_models.py (int8 builds of packaged models)."""
