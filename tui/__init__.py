"""The Textual terminal app: recording, live transcript, editing and export (not built yet)."""
