"""Acoustic model: log-mel features, the BiLSTM-CTC network, its checkpoint, data and training recipe."""
