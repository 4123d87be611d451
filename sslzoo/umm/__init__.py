"""The Undoing Memorization Mechanism (UMM, arXiv 2410.00772) as a wrapper for any SSL model."""
from sslzoo.umm.align import (ALIGNMENTS, gradient_norm_distribution, js_to_uniform,
                              similarity_kl)
from sslzoo.umm.split import block_outputs, resolve_split
from sslzoo.umm.wrapper import UMM, refusal

__all__ = ["ALIGNMENTS", "UMM", "block_outputs", "gradient_norm_distribution", "js_to_uniform",
           "refusal", "resolve_split", "similarity_kl"]
