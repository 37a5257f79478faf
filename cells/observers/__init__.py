"""Status sources by name (IDP_STATUS_SOURCE). A new source is a module and a line here."""
from django.conf import settings
from django.utils.module_loading import import_string

SOURCES = {
    "simulator": "cells.simulator.SimulatorStatus",
    "kubernetes": "cells.observers.kubernetes.KubernetesStatus",
}


def get_status_source():
    name = settings.IDP_STATUS_SOURCE
    if name not in SOURCES:
        raise ValueError(f"unknown status source '{name}' (known: {', '.join(SOURCES)})")
    return import_string(SOURCES[name])()
