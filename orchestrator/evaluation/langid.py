"""Language identification of replies, by py3langid (BSD-3; its model ships inside the package).

Loading the model takes seconds, so it is loaded once per process, on first use. Pack languages are
BCP 47 tags; py3langid names Filipino by its base language, Tagalog (``tl``).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

# BCP 47 tag used in packs -> py3langid label, where they differ.
TO_LANGID = {"fil": "tl"}
FROM_LANGID = {v: k for k, v in TO_LANGID.items()}
_lock = threading.Lock()


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> tuple[str, float]:
    """(BCP 47 tag, probability) of the language ``text`` is written in."""
    with _lock:  # the identifier keeps no state per call, but its first load must happen once
        label, probability = _identifier().classify(text)
    return FROM_LANGID.get(label, label), float(probability)


def warm_up() -> None:
    """Load the model now (e.g. before the workload starts), not on the first reply."""
    identify("warm up")
