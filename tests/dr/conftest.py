"""Fixtures shared by the OCI contract tests: one local OCI API server per module, with a test key pair."""
import pytest

from tests.dr.ocifake import OciFake, make_config


@pytest.fixture(scope="module")
def oci_cfg():
    return make_config()


@pytest.fixture(scope="module")
def oci_server(oci_cfg):
    server = OciFake(oci_cfg[1])
    yield server
    server.stop()
