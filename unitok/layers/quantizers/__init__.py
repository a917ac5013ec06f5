"""Shared quantizers: FSQ, BSQ / LFQ, VQ and residual VQ. Inputs are channels-last `(..., dim)`."""

from ._common import QuantizerOutput, code_usage, fp32_region
from .bsq import BinarySphericalQuantizer, LookupFreeQuantizer
from .fsq import FiniteScalarQuantizer
from .residual_vq import ResidualVectorQuantizer
from .vq import VectorQuantizer

__all__ = [
    "BinarySphericalQuantizer",
    "FiniteScalarQuantizer",
    "LookupFreeQuantizer",
    "QuantizerOutput",
    "ResidualVectorQuantizer",
    "VectorQuantizer",
    "code_usage",
    "fp32_region",
]
