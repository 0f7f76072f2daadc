"""Differential test: the same operation script against Apache ZooKeeper
(the reference) and against the server under test (ZK_TARGET); the
normalised transcripts must be equal.  With ZK_TARGET=zookeeper this
compares ZooKeeper with itself, which proves that the normalisation is
deterministic.

The target's transcript is produced through the command line
(`difftest.py --record $ZK_TARGET out.json`), the reference's in-process."""

import os
import subprocess
import sys

import pytest

import zkharness
from conftest import TARGET, require

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import difftest  # noqa: E402


def test_transcripts_equal(tmp_path):
    require(zkharness.zookeeper_available())  # the reference
    require(zkharness.target_available())
    reference = difftest.dumps(difftest.record_with_server("zookeeper"))
    (tmp_path / "zookeeper.json").write_text(reference)

    out = tmp_path / ("%s.json" % TARGET)
    p = subprocess.run(
        [sys.executable, os.path.join(HERE, "difftest.py"), "--record", TARGET, str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert p.returncode == 0, "difftest.py --record %s failed:\n%s\n%s" % (TARGET, p.stdout, p.stderr[-5000:])
    target = out.read_text()
    if target != reference:
        diff = difftest.unified(reference, target, "zookeeper", TARGET)
        pytest.fail(
            "transcripts differ (reference: Apache ZooKeeper; - reference, + %s):\n%s"
            % (TARGET, diff),
            pytrace=False,
        )
    # sanity: the transcript covers what it claims to
    assert '"step": "multi success"' in reference
    assert reference.count('"events"') > 100
