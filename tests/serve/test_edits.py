"""The service's edit sessions: the newest few kept, the rest closed with a clear message."""

import numpy as np
import pytest

from parsing.outputs.parse import Parse
from parsing.serve.edits import EditError, EditSessions


def tiny() -> Parse:
    labels = np.zeros((4, 6), np.uint8)
    return Parse(labels, ["null", "bag"], [(0, 0, 0), (9, 9, 9)], [], None, {}, None, False,
                 image=np.zeros((4, 6, 3), np.uint8), work_labels=labels)  # fmt: skip


def test_only_the_newest_sessions_stay_open():
    sessions = EditSessions(limit=2)
    first, second = sessions.open(tiny()), sessions.open(tiny())
    sessions.get(first)  # used: now the newest
    third = sessions.open(tiny())
    assert len(sessions) == 2 and sessions.get(first) and sessions.get(third)
    with pytest.raises(EditError, match="closed") as err:
        sessions.get(second)
    assert err.value.status == 404


def test_an_edit_replaces_the_sessions_parse():
    sessions = EditSessions()
    key = sessions.open(tiny())
    edited, region = sessions.apply(key, "click", {"x": "1", "y": "1", "label": "bag"}, None)
    assert region is None and sessions.get(key) is edited and edited.labels[1, 1] == 1
    with pytest.raises(EditError, match="give label"):
        sessions.apply(key, "click", {"x": "1", "y": "1"}, None)
