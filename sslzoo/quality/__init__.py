"""Label-free embedding-quality scores: pure keras.ops functions, arrays in, a float32 scalar out.

Both are entropy effective ranks exp(−Σ p_k log p_k) of a spectrum normalised to p_k:
``rankme`` of the embeddings' singular values (Garrido et al. 2023), ``lidar`` of the
between-image covariance whitened by the within-image (between-view) covariance
(Thilak et al. 2024). Higher means the embeddings use more dimensions; a collapsed z scores ≈ 1.
"""
from sslzoo.quality.lidar import lidar
from sslzoo.quality.rank import rankme

__all__ = ["lidar", "rankme"]
