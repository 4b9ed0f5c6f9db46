"""`minutes tui [FILE]` and `minutes record`: check the options, then run the app (called by minutes.cli)."""
from __future__ import annotations

import argparse
import sys

from minutes.pipeline import Transcriber
from tui.app import AppConfig, default_recordings_dir, make_app
from tui.live import ChunkedTranscriber, streaming
from tui.recorder import AudioSourceError, input_devices
from tui.speakers import load_speakers


def run(args: argparse.Namespace) -> int:
    """Exit code: 0 after a normal quit, 2 for bad options (missing file or model, no devices to list)."""
    if args.list_devices:
        return _list_devices()
    file = getattr(args, "file", None)
    if file is not None and not file.is_file():
        return _fail(f"{file}: no such file")
    for model in (args.model, args.stream_model):
        if model is not None and not model.is_file():
            return _fail(f"{model}: no such model file")
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    config = AppConfig(file=file, record=args.command == "record", device=device,
                       recordings_dir=args.recordings_dir or default_recordings_dir(),
                       output_dir=args.output_dir, formats=args.formats)
    live = streaming(args.stream_model, args.decoder) if args.stream else ChunkedTranscriber
    app = make_app(config, lambda: Transcriber.load(args.model, decoder=args.decoder), live=live,
                   speakers=load_speakers)
    app.run()
    return 0


def _list_devices() -> int:
    try:
        devices = input_devices()
    except AudioSourceError as error:
        return _fail(str(error))
    for device in devices:
        print(f"{device}  ({device.rate:.0f} Hz){'  [default]' if device.default else ''}")
    if not devices:
        print("no input devices found", file=sys.stderr)
    return 0 if devices else 2


def _fail(reason: str) -> int:
    print(f"minutes: error: {reason}", file=sys.stderr)
    return 2
