"""Outputs: mask PNGs, overlays, garment descriptions and cut-outs, the summary record, atomic file writes."""
