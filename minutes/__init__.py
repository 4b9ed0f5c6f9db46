"""minutes: offline meeting transcription into timestamped minutes."""

__version__ = "0.1.0"
