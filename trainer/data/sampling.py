"""Language sampling (p_i ∝ n_i^α) and the seeded random streams that make the data order reproducible."""

import zlib
from collections.abc import Mapping

import numpy as np


def sampling_probabilities(sizes: Mapping[str, float], alpha: float) -> dict[str, float]:
    """Multinomial language probabilities p_i = n_i^α / Σ_j n_j^α (Lample & Conneau 2019; XLM-R uses α = 0.3).

    α = 1 samples in proportion to corpus size, α = 0 uniformly; in between, low-resource languages are
    up-sampled relative to their size. `sizes` maps a language (or language pair) to its number of
    sentences (or pairs); all must be positive.
    """
    if not sizes:
        return {}
    bad = {name: n for name, n in sizes.items() if not n or n <= 0}
    if bad:
        raise ValueError(f"language sizes must be positive, got {bad}")
    names = list(sizes)
    # Work with shares n_i / N so that n_i^α cannot overflow for huge corpora.
    shares = np.array([sizes[name] for name in names], dtype=np.float64)
    shares /= shares.sum()
    weights = shares**alpha
    weights /= weights.sum()
    return dict(zip(names, weights.tolist()))


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and run (unlike hash(), which is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def make_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent random stream for (seed, *keys); strings are hashed stably."""
    entropy = [int(seed) & 0xFFFFFFFF] + [stable_hash(k) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(entropy)
