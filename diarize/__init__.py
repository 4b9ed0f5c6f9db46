"""Training side of speaker diarization: voices corpus, meeting simulator, and the recipes that train the
segmentation and speaker-embedding models shipped in models/diarization (loaded by minutes.diarization).

Depends on acoustic (audio constants) and pyannote.audio; never imports tui, and minutes only in tune (the
runtime pipeline, minutes.diarization, whose hyper-parameters it tunes). twin, chunks, crops and train_twin's
training run without pyannote (a lent GPU machine has none); packing and export use it."""
