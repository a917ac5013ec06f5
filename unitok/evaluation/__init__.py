"""The evaluation harness: metrics per modality, reports and figures."""
