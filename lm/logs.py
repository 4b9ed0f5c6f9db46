"""Logging for the training recipes (acoustic.train, lm.train_lm): stderr plus the experiment's train.log."""
from __future__ import annotations

import logging
from pathlib import Path


def setup_logging(logger: logging.Logger, path: Path) -> None:
    """Send `logger` to stderr and to `path` (appending across resumed runs); safe to call again."""
    for handler in logger.handlers:
        handler.close()
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    for handler in (logging.StreamHandler(), logging.FileHandler(path)):
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
