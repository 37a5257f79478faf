"""The platform package and every Application we render, against our schemas of the real CRDs."""
import pytest

from cells import platform
from cells.rendering import render_application

from tests.cells.test_rendering import app_ctx
from tests.platform.conftest import errors


def by_kind(kind):
    return [o for o in platform.package_objects() if o["kind"] == kind]


def test_xrds_are_crossplane_v2_namespaced_and_valid(core_schema):
    schema = core_schema("crossplane-xrd-v2")
    xrds = by_kind("CompositeResourceDefinition")
    assert sorted(x["spec"]["names"]["kind"] for x in xrds) == ["CellMySQLClaim", "ReplicationClaim"]
    for xrd in xrds:
        assert errors(xrd, schema) == []
        assert xrd["spec"]["scope"] == "Namespaced"
        assert "crossplane" not in xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def test_every_composition_is_a_valid_pipeline_of_an_installed_function(core_schema):
    schema = core_schema("crossplane-composition")
    functions = {f["metadata"]["name"] for f in by_kind("Function")}
    comps = by_kind("Composition")
    assert {c["metadata"]["labels"].get("platform.idp-multicloud.io/provider") for c in comps} >= {"oci", "aws", "azure", "gcp"}
    for comp in comps:
        assert errors(comp, schema) == []
        assert comp["spec"]["mode"] == "Pipeline"
        assert {s["functionRef"]["name"] for s in comp["spec"]["pipeline"]} <= functions


def test_the_function_objects_are_valid(core_schema):
    import yaml

    from cells.rendering import DEFAULT_MANIFESTS_DIR

    schema = core_schema("crossplane-function-meta")
    meta = yaml.safe_load((DEFAULT_MANIFESTS_DIR / "crossplane/function/package/crossplane.yaml").read_text())
    for obj in [meta, *by_kind("Function")]:
        assert errors(obj, schema) == []


@pytest.mark.parametrize("side", ["primary", "secondary"])
@pytest.mark.parametrize("mode", ["active", "warm", "pilot", "cold"])
def test_every_rendered_application_validates_against_argo_cds_crd(core_schema, side, mode):
    app = render_application(app_ctx(side=side, computeMode=mode, replicas=3))
    assert errors(app, core_schema("argocd-application")) == []


def test_the_application_schema_rejects_what_argo_cd_would():
    """Negative control."""
    from tests.platform.conftest import SCHEMAS, _load

    schema = _load(SCHEMAS / "core" / "argocd-application.yaml")
    app = render_application(app_ctx())
    del app["spec"]["project"]
    assert errors(app, schema)
    app = render_application(app_ctx())
    app["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    assert errors(app, schema)
