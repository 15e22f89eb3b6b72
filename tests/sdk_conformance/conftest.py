"""Shared fixtures for the SDK conformance suite.

tests/tests/sdk_conformance.rs starts a sandbox and runs one file of this folder with the
sandbox's URLs and credentials as JSON in MLC_SDK_SANDBOX. The files drive the vendor's own SDK
(installed pinned in .venv by infra/bootstrap.sh) against the sandbox, so every assertion here
is about what the vendor's SDK accepts, parses and raises.
"""

import json
import os

import pytest
import requests


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
