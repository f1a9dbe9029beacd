"""Inference: the ``Parser`` pipeline and its steps: decoding with exclusive pairs, CRFs, refocus/widen, confidence,
label views (tags, merges)."""
