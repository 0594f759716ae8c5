"""WebRTC from Chromium with its default flags, as on a desktop with a LAN: the browser
offers its LAN address as an mDNS name (or nothing), the server answers with its loopback
candidate and learns the browser's address from its checks (peer-reflexive).

A loopback-only namespace has no interface Chromium would gather on, so the probe runs in a
network namespace of its own with a veth pair standing in for a LAN (nothing is reachable
through it). Needs root, ``unshare`` and ``ip``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import MISSING

ROOT = Path(__file__).resolve().parents[2]

#: A namespace of its own: loopback plus a veth pair with a documentation-range address and a
#: default route into it, which is what makes Chromium gather a host candidate.
NAMESPACE_SETUP = (
    "ip link set lo up && ip link add rtp0 type veth peer name rtp1 && "
    "ip addr add 192.0.2.10/24 dev rtp0 && ip link set rtp0 up && ip link set rtp1 up && "
    "ip route add default dev rtp0"
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium and Playwright: {MISSING}"),
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
        reason="needs root, unshare and ip for a namespace with a LAN-like interface",
    ),
]


def test_webrtc_connects_from_chromium_with_default_flags() -> None:
    command = f"{NAMESPACE_SETUP} && exec {sys.executable} -m tests.browser.rtc_lan_probe"
    done = subprocess.run(
        ["unshare", "-n", "--", "bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=50
    )
    if done.returncode != 0 and "veth" in done.stderr + done.stdout and "RTNETLINK" in done.stderr:
        pytest.skip(f"cannot create a veth pair here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loopback_only"] is False  # so the driver added no WebRTC switch or permission
    # Chromium offered no loopback candidate: an mDNS name or nothing (the old server's 400).
    (offered, *_) = result["offered"]
    assert "127.0.0.1" not in offered, offered
    assert all(address.endswith(".local") for address in offered), offered
    # The server learned the browser's address from its checks (Chromium's socket sends to
    # 127.0.0.1 from loopback), never resolved the name, and the page received.
    assert [tuple(c) for c in result["learned"]] == [("prflx", "127.0.0.1")], result["learned"]
    rtc = result["rtc"]
    assert rtc["state"] == "open", rtc
    assert rtc["channels"]["reliable"]["delivered"] >= 10 and rtc["channels"]["reliable"]["missing"] == 0
