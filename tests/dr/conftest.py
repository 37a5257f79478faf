"""Fixtures shared by the traffic contract tests: one local OCI API server per module, with a test key pair, and one
local Cloudflare API server per module."""
import pytest

from tests.dr.cffake import CloudflareFake
from tests.dr.ocifake import OciFake, make_config


@pytest.fixture(scope="module")
def oci_cfg():
    return make_config()


@pytest.fixture(scope="module")
def oci_server(oci_cfg):
    server = OciFake(oci_cfg[1])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cf_server():
    server = CloudflareFake()
    yield server
    server.server.stop()
