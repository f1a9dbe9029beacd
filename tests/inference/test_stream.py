"""``parsing.inference.stream``: where a stream's first reads run follows which thread waits; parses are the same."""

import threading
from concurrent.futures import Future

import numpy as np
import pytest

from parsing import Parser
from parsing.inference.stream import ReadsPlacement

VAL = ("0009", "0038", "0003")  # validation photos


def test_the_reads_go_to_the_decoding_thread_while_it_waits_for_the_network():
    placement = ReadsPlacement()
    done = Future()
    done.set_result("ready")
    assert placement.result(done) == "ready" and placement.on_network  # no wait: the network thread has time
    late = Future()
    threading.Timer(0.05, late.set_result, ("late",)).start()
    assert placement.result(late) == "late" and not placement.on_network  # waited 50 ms: the network is the bound
    assert placement.result(done) == "ready" and placement.on_network


def test_the_reads_on_either_thread_give_the_same_parses(monkeypatch, ccp_root):
    pytest.importorskip("onnxruntime")
    parser = Parser.load(backend="onnxruntime", input_size=(256, 160))
    assert parser.overlap  # the network runs on its own thread, one photo ahead
    photos = [ccp_root / "photos" / f"{stem}.jpg" for stem in VAL]
    monkeypatch.setattr(ReadsPlacement, "WAITED", float("inf"))  # always on the network thread
    ahead = list(parser.parse_many(photos, batch_size=1))
    monkeypatch.setattr(ReadsPlacement, "WAITED", -1.0)  # always on the decoding thread (after the first photo)
    here = list(parser.parse_many(photos, batch_size=1))
    for a, b in zip(ahead, here, strict=True):
        assert np.array_equal(a.labels, b.labels) and a.garments == b.garments
