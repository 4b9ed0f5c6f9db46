.PHONY: setup demo test bench

export HF_HUB_OFFLINE := 1
export PYANNOTE_METRICS_ENABLED := 0

setup:
	@scripts/setup.sh

# Transcribe the bundled sample meeting into Markdown minutes with the shipped model.
demo: setup
	@.venv/bin/minutes transcribe samples/meeting.opus -o out -f md,srt,vtt,json,txt --names "Lee,Chen,Mei" --speakers 3
	@echo "Minutes written to out/meeting.md"

test: setup
	@.venv/bin/python -m pytest

bench: setup
	@.venv/bin/pip install -q -e ".[bench]"
	@.venv/bin/python -m bench.asr --limit 400 --model models/default/model.pt --model models/logmel/model.pt
