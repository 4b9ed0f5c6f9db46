"""Token vocabulary, text normalization, CTC decoding and forced alignment to word times."""
