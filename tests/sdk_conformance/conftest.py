"""Shared fixtures for the SDK conformance suite.

tests/tests/sdk_conformance.rs starts a sandbox and runs one file of this folder with the
sandbox's URLs and credentials as JSON in MLC_SDK_SANDBOX. The files drive the vendor's own SDK
(installed pinned in .venv by infra/bootstrap.sh) against the sandbox, so every assertion here
is about what the vendor's SDK accepts, parses and raises.
"""

import ipaddress
import json
import os
import socket

import pytest
import requests

# Nothing here may leave the machine: an SDK whose base URL override did not take would
# otherwise quietly call the real vendor. Every connection and name lookup must be loopback.
_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_connect(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise ConnectionRefusedError(f"SDK conformance: refusing to connect to {address} (loopback only)")
    return _connect(sock, address)


def _loopback_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_loopback(host if isinstance(host, str) else host.decode()):
        raise socket.gaierror(f"SDK conformance: refusing to resolve {host!r} (loopback only)")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _loopback_connect
socket.getaddrinfo = _loopback_getaddrinfo


def test_the_loopback_guard_holds():
    with pytest.raises(OSError):
        requests.get("https://api.mailchimp.com/3.0/ping", timeout=5)


@pytest.fixture(scope="session")
def sandbox():
    raw = os.environ.get("MLC_SDK_SANDBOX")
    if not raw:
        pytest.fail("MLC_SDK_SANDBOX is not set: run through `cargo test -p mlc-tests --test sdk_conformance`")
    return json.loads(raw)


class Control:
    """The sandbox's control API (`/_sandbox/…`, no auth), for seeding records and switching
    quirks. Failing calls raise: a test must not go on with a half-made setup."""

    def __init__(self, root):
        self.root = root.rstrip("/")

    def call(self, method, path, body=None):
        r = requests.request(method, f"{self.root}/_sandbox/{path.lstrip('/')}", json=body, timeout=30)
        assert r.status_code < 300, f"control {method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def post(self, path, body=None):
        return self.call("POST", path, body)

    def get(self, path):
        return self.call("GET", path)

    def patch(self, path, body):
        return self.call("PATCH", path, body)

    def put(self, path, body):
        return self.call("PUT", path, body)

    def delete(self, path):
        return self.call("DELETE", path)
