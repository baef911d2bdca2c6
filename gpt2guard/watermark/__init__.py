"""Kirchenbauer et al.'s green-list watermark: keys, generation-time bias and detection.

``keygen`` / ``load_key`` handle key files (:mod:`.keys`); :class:`WatermarkConfig` is what a
generation job applies (:mod:`.config`, :mod:`.bias`); :func:`detect_texts` tests texts
(:mod:`.detect`). The green lists both sides use come from one function
(:mod:`.greenlist`). docs/watermark.md explains the choices.
"""

from gpt2guard.watermark.config import WatermarkConfig
from gpt2guard.watermark.detect import WatermarkScore, detect_texts, empirical_fpr
from gpt2guard.watermark.keys import WatermarkKey, keygen, load_key

__all__ = ["keygen", "load_key", "WatermarkKey", "WatermarkConfig", "detect_texts", "WatermarkScore",
           "empirical_fpr"]
