"""The DR lab for tests: real MariaDB replication and a real PowerDNS, started per test and stopped after."""
import threading

import pytest

from dr.lab import Lab
from policy import active


@pytest.fixture
def lab_rpo():
    return 10


@pytest.fixture
def lab(tmp_path_factory, settings, lab_rpo):
    # Short paths: the MariaDB socket path must fit in 108 bytes.
    lab = Lab(tmp_path_factory.mktemp("lab"), rpo_seconds=lab_rpo).up()
    for name, value in lab.settings().items():
        setattr(settings, name, value)
    settings.IDP_SIMULATOR_READY_DELAY = 0
    active.reset()
    yield lab
    lab.down()


@pytest.fixture
def lab_cell(lab, dev, transactional_db):
    from tests.dr.helpers import ready_cell

    from dr.lab import HOST

    return ready_cell(dev, tier="C1", profile="lab", cell="lab", env="prod", host=HOST)


class Heartbeat(threading.Thread):
    """What the beat task does in production: probe the lag (and stamp the heartbeat) every interval."""

    def __init__(self, interval=0.5):
        super().__init__(daemon=True)
        self.interval, self._halt = interval, threading.Event()

    def run(self):
        from django.db import connection

        from dr.services import probe_replication_lag

        while not self._halt.wait(self.interval):
            try:
                probe_replication_lag()
            except Exception:  # noqa: BLE001 - a probe failing while a server is down is expected
                pass
        connection.close()

    def stop(self):
        self._halt.set()
        self.join(timeout=10)


@pytest.fixture
def heartbeat(lab_cell):
    hb = Heartbeat()
    hb.start()
    yield hb
    hb.stop()
