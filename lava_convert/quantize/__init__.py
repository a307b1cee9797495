"""Quantization to Loihi's fixed point (:mod:`.scale`) and the check of what it cost
(:mod:`.check`)."""
