"""Metrics, one module per modality; each is tested against an independent computation."""
