"""Tests for cells.rendering: templates, compute modes, CRD conformance, safety."""

import copy
import re

import pytest
import yaml

from cells import platform
from cells.rendering import (
    DEFAULT_MANIFESTS_DIR,
    RenderError,
    goldengate_names,
    object_path,
    render_application,
    render_mysql_claim,
    render_replication_claim,
    render_template,
    to_yaml,
)

LABEL = "platform.idp-multicloud.io/"


# ------------------------------------------------------------------ contexts


def mysql_ctx(**over):
    ctx = {
        "name": "payments-prod-primary",
        "namespace": "cell-payments-prod",
        "cell": "payments",
        "environment": "prod",
        "team": "payments-team",
        "side": "primary",
        "tier": "C0",
        "drProfile": "gold",
        "size": "small",
        "storageGB": 50,
        "ha": True,
        "cloud": "oci",
        "region": "us-ashburn-1",
        "cluster": "oke-iad-1",
        "revision": 3,
        "decisionId": 17,
        "policyVersion": "2025.1",
    }
    ctx.update(over)
    return ctx


def replication_ctx(tool="oci-goldengate", **over):
    ctx = {
        "name": "payments-prod-repl",
        "namespace": "cell-payments-prod",
        "cell": "payments",
        "environment": "prod",
        "team": "payments-team",
        "tier": "C0",
        "drProfile": "gold",
        "tool": tool,
        "expectedRPOSeconds": 30,
        "revision": 3,
        "source": {"claimName": "payments-prod-primary", "cloud": "oci",
                   "region": "us-ashburn-1", "cluster": "oke-iad-1"},
        "target": {"claimName": "payments-prod-secondary", "cloud": "aws",
                   "region": "us-east-1", "cluster": "eks-use1-1"},
    }
    if tool == "oci-goldengate":
        ctx["goldengate"] = {
            "compartmentId": "ocid1.compartment.oc1..aaaa",
            "deploymentId": "ocid1.goldengatedeployment.oc1.iad.dddd",
            "sourceHost": "10.0.0.5",
            "targetHost": "payments.abc.us-east-1.rds.amazonaws.com",
            "sourcePasswordSecretId": "ocid1.vaultsecret.oc1.iad.ssss",
            "targetPasswordSecretId": "ocid1.vaultsecret.oc1.iad.tttt",
        }
    ctx.update(over)
    return ctx


def app_ctx(**over):
    ctx = {
        "name": "payments-prod-secondary",
        "namespace": "payments",
        "cell": "payments",
        "environment": "prod",
        "team": "payments-team",
        "side": "secondary",
        "image": "ghcr.io/acme/payments:1.0",
        "publicHost": "payments.prod.company.com",
        "trafficMode": "active-passive",
        "computeMode": "warm",
        "replicas": 2,
        "cloud": "aws",
        "region": "us-east-1",
        "cluster": "eks-use1-1",
        "revision": 4,
        "repoURL": "https://git.example.com/acme/deploy.git",
        "path": "charts/payments",
        "targetRevision": "main",
    }
    ctx.update(over)
    return ctx


def helm_params(app):
    return {p["name"]: p["value"] for p in app["spec"]["source"]["helm"]["parameters"]}


# ------------------------------------------- a tiny structural-schema validator

# Keywords the validator understands; a CRD using any other one fails loudly
# rather than being half-checked.
_KNOWN = {"type", "description", "required", "properties", "additionalProperties",
          "items", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern",
          "format", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-list-type",
          "x-kubernetes-list-map-keys"}
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def validate(value, schema, path="$"):
    """Errors of `value` against a structural OpenAPI v3 schema (subset).

    Like the API server: objects reject fields that are neither in
    `properties` nor allowed by `additionalProperties` /
    `x-kubernetes-preserve-unknown-fields`.
    """
    unknown_kw = set(schema) - _KNOWN
    assert not unknown_kw, f"{path}: validator does not support {unknown_kw}"
    errors = []
    typ = schema.get("type")
    if typ and not _TYPES[typ](value):
        return [f"{path}: expected {typ}, got {type(value).__name__} {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: {value} < minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: {value} > maximum {schema['maximum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{path}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if typ == "array" and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    if typ == "object":
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required {key!r}")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                errors += validate(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                errors += validate(item, extra, f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and extra is not True:
                errors.append(f"{path}: unknown field {key!r}")
    return errors


def validate_object(obj, schema):
    # metadata is validated by the API server itself, not by the CRD schema
    body = {k: v for k, v in obj.items() if k != "metadata"}
    assert isinstance(obj.get("metadata"), dict)
    return validate(body, schema)


def assert_structural(schema, path="$"):
    """Every node has a type (or preserves unknown fields); no mixing of
    properties and additionalProperties (API server rules for structural schemas)."""
    assert "type" in schema or schema.get("x-kubernetes-preserve-unknown-fields"), path
    assert not ("properties" in schema and "additionalProperties" in schema), path
    for key, sub in schema.get("properties", {}).items():
        assert_structural(sub, f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        assert_structural(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        assert_structural(schema["items"], f"{path}[]")


@pytest.fixture(scope="module")
def crds():
    path = DEFAULT_MANIFESTS_DIR / "crds" / "platform-dr-crds.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return {d["spec"]["names"]["kind"]: d for d in docs}


def schema_of(crds, kind):
    (version,) = crds[kind]["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


# ---------------------------------------------------------------------- CRDs


def test_crds_are_structural_namespaced_with_status_and_columns(crds):
    assert set(crds) == {"CellMySQLClaim", "ReplicationClaim"}
    for kind, plural in [("CellMySQLClaim", "cellmysqlclaims"),
                         ("ReplicationClaim", "replicationclaims")]:
        crd = crds[kind]
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["metadata"]["name"] == f"{plural}.platform.idp-multicloud.io"
        assert crd["spec"]["group"] == "platform.idp-multicloud.io"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["names"]["plural"] == plural
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}
        columns = {c["name"] for c in version["additionalPrinterColumns"]}
        assert {"Cell", "Env", "Ready"} <= columns
        schema = version["schema"]["openAPIV3Schema"]
        assert_structural(schema)
        # spec is closed: no escape hatch below it
        assert "x-kubernetes-preserve-unknown-fields" not in yaml.safe_dump(schema["properties"]["spec"])
        conditions = schema["properties"]["status"]["properties"]["conditions"]["items"]
        assert set(conditions["properties"]) == {"type", "status", "reason", "message",
                                                 "lastTransitionTime"}
    cmc_columns = {c["name"] for c in crds["CellMySQLClaim"]["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {"Side", "Cloud", "Region"} <= cmc_columns
    rc_status = schema_of(crds, "ReplicationClaim")["properties"]["status"]["properties"]
    assert rc_status["lagSeconds"]["type"] == "number"
    assert rc_status["lagMeasuredAt"]["format"] == "date-time"


def test_validator_rejects_what_the_api_server_would(crds):
    schema = schema_of(crds, "CellMySQLClaim")
    good = render_mysql_claim(mysql_ctx())
    assert validate_object(good, schema) == []
    for mutate, expected in [
        (lambda o: o["spec"].update(size="Huge size"), "does not match"),
        (lambda o: o["spec"].update(storageGB=0), "minimum"),
        (lambda o: o["spec"].update(storageGB="50"), "expected integer"),
        (lambda o: o["spec"].update(side="tertiary"), "not in"),
        (lambda o: o["spec"].update(color="blue"), "unknown field 'color'"),
        (lambda o: o["spec"].pop("placement"), "missing required 'placement'"),
    ]:
        bad = copy.deepcopy(good)
        mutate(bad)
        errors = validate_object(bad, schema)
        assert any(expected in e for e in errors), (expected, errors)


# ------------------------------------------------------------ CellMySQLClaim


@pytest.mark.parametrize("side,cloud", [("primary", "oci"), ("secondary", "aws")])
def test_mysql_claim_matches_crd(crds, side, cloud):
    claim = render_mysql_claim(mysql_ctx(side=side, cloud=cloud))
    assert validate_object(claim, schema_of(crds, "CellMySQLClaim")) == []
    assert claim["apiVersion"] == "platform.idp-multicloud.io/v1alpha1"
    assert claim["kind"] == "CellMySQLClaim"
    spec = claim["spec"]
    assert spec["storageGB"] == 50 and spec["ha"] is True  # typed, not "50"/"True"
    assert spec["side"] == side
    assert spec["crossplane"]["compositionSelector"]["matchLabels"][LABEL + "provider"] == cloud
    assert "writeConnectionSecretToRef" not in spec  # v2 namespaced XRs: our function composes <name>-conn
    assert spec["decision"] == {"id": 17, "policyVersion": "2025.1"}
    assert claim["metadata"]["labels"][LABEL + "side"] == side


def test_mysql_claim_rejects_bad_side():
    with pytest.raises(RenderError) as err:
        render_mysql_claim(mysql_ctx(side="both"))
    assert err.value.key == "side"


# ---------------------------------------------------------- ReplicationClaim


@pytest.mark.parametrize("tool", ["oci-goldengate", "mysql-replication", "backup-restore"])
def test_replication_claim_matches_crd(crds, tool):
    claim = render_replication_claim(replication_ctx(tool))
    assert claim["kind"] == "ReplicationClaim"
    assert validate_object(claim, schema_of(crds, "ReplicationClaim")) == []
    assert claim["spec"]["tool"] == tool
    assert claim["spec"]["expectedRPOSeconds"] == 30
    assert claim["spec"]["source"]["claimName"] == "payments-prod-primary"
    assert claim["metadata"]["labels"][LABEL + "cluster"] == "eks-use1-1"  # target side


@pytest.mark.parametrize("tool", ["mysql-replication", "backup-restore"])
def test_no_goldengate_fields_for_other_tools(tool):
    claim = render_replication_claim(replication_ctx(tool))
    assert "goldengate" not in claim["spec"]
    assert LABEL + "replicat-name" not in claim["metadata"]["labels"]


def test_a_goldengate_replication_names_its_processes_and_lag_metric():
    """The connections to both databases are composed by our composition function (tests/platform), not rendered here."""
    ctx = replication_ctx("oci-goldengate")
    claim = render_replication_claim(ctx)
    extract, replicat = goldengate_names("payments", "prod")
    assert claim["spec"]["goldengate"] == {
        "deploymentId": ctx["goldengate"]["deploymentId"], "extractName": extract, "replicatName": replicat}
    assert claim["metadata"]["labels"][LABEL + "replicat-name"] == replicat
    assert claim["metadata"]["annotations"][LABEL + "lag-metric"] == "oci_goldengate ReplicatLag"


def test_goldengate_names_are_deterministic_and_valid():
    extract, replicat = goldengate_names("payments", "prod")
    assert (extract, replicat) == goldengate_names("payments", "prod")
    assert re.fullmatch(r"E[A-Z]{7}", extract) and re.fullmatch(r"R[A-Z]{7}", replicat)
    assert extract[1:] == replicat[1:]
    others = {goldengate_names(c, e) for c in ("payments", "orders", "users")
              for e in ("prod", "stage")}
    assert len(others) == 6


# -------------------------------------------------------------- Applications


# Every (role x compute mode x side): what runs follows the role, never the side it was first placed on.
@pytest.mark.parametrize("side", ["primary", "secondary"])
@pytest.mark.parametrize("mode,role,automated,replica_count", [
    ("active", "writer", True, "5"),
    ("warm", "standby", True, "5"),
    ("pilot", "standby", True, "0"),
    ("cold", "standby", False, "0"),
])
def test_application_follows_role_and_compute_mode_on_either_side(side, mode, role, automated, replica_count):
    app = render_application(app_ctx(side=side, computeMode=mode, replicas=5))
    sync = app["spec"]["syncPolicy"]
    assert ("automated" in sync) is automated
    if automated:
        assert sync["automated"] == {"prune": True, "selfHeal": True}
    assert sync["syncOptions"] == ["CreateNamespace=true"]  # defined either way: Argo CD knows the app
    assert helm_params(app)["replicaCount"] == replica_count
    labels = app["metadata"]["labels"]
    assert (labels[LABEL + "compute-mode"], labels[LABEL + "role"], labels[LABEL + "side"]) == (mode, role, side)


def test_a_secondary_activated_by_failover_runs_full_replicas_with_automated_sync():
    """The bug this guards: the activated secondary was rendered with 0 replicas and no automated sync."""
    app = render_application(app_ctx(side="secondary", computeMode="active", replicas=3))
    assert helm_params(app)["replicaCount"] == "3"
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_a_demoted_primary_in_a_cold_profile_is_never_synced():
    app = render_application(app_ctx(side="primary", computeMode="cold", replicas=0))
    assert "automated" not in app["spec"]["syncPolicy"] and helm_params(app)["replicaCount"] == "0"


def test_applications_cascade_their_deletion_to_the_workload():
    app = render_application(app_ctx())
    assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]


def test_application_shape():
    app = render_application(app_ctx())
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    assert app["kind"] == "Application"
    assert app["metadata"]["namespace"] == "argocd"
    assert app["spec"]["destination"] == {"name": "eks-use1-1", "namespace": "payments"}
    source = app["spec"]["source"]
    assert (source["repoURL"], source["path"], source["targetRevision"]) == (
        "https://git.example.com/acme/deploy.git", "charts/payments", "main")
    params = helm_params(app)
    assert params["image"] == "ghcr.io/acme/payments:1.0"
    assert params["ingress.host"] == "payments.prod.company.com"
    assert all(isinstance(v, str) for v in params.values())  # Helm parameter values are strings


@pytest.mark.parametrize("bad", [{"computeMode": "hot"}, {"side": "both"}, {"replicas": -1},
                                 {"replicas": "2"}])
def test_application_rejects_bad_input(bad):
    with pytest.raises(RenderError):
        render_application(app_ctx(**bad))


def test_yaml_injection_in_image_stays_a_string():
    evil = "x\nkind: Secret\nmetadata:\n  name: stolen"
    app = render_application(app_ctx(image=evil))
    assert helm_params(app)["image"] == evil
    assert app["kind"] == "Application"
    docs = list(yaml.safe_load_all(to_yaml([app])))
    assert len(docs) == 1 and docs[0]["kind"] == "Application"
    assert helm_params(docs[0])["image"] == evil
    # a value is never re-scanned for placeholders
    sneaky = render_application(app_ctx(image="${repoURL}"))
    assert helm_params(sneaky)["image"] == "${repoURL}"


# --------------------------------------------------------- renderer mechanics


def test_typed_and_text_substitution(tmp_path):
    (tmp_path / "t.yaml").write_text(
        "n: ${n}\nflag: ${flag}\nd: ${d}\nlst: ${lst}\nnone: ${none}\n"
        "text: ${n|str}\nbool_text: ${flag|str}\nmixed: a-${n}-${flag}-${d.k}\n"
        "literal: 5\n")
    ctx = {"n": 5, "flag": True, "d": {"k": "v"}, "lst": [1, 2], "none": None}
    (out,) = render_template("t.yaml", ctx, manifests_dir=tmp_path)
    assert out == {"n": 5, "flag": True, "d": {"k": "v"}, "lst": [1, 2], "none": None,
                   "text": "5", "bool_text": "true", "mixed": "a-5-true-v", "literal": 5}
    out["d"]["k"] = "changed"
    assert ctx["d"]["k"] == "v"  # output does not alias the ctx


def test_unknown_placeholder_raises_naming_template_and_key(tmp_path):
    (tmp_path / "t.yaml").write_text("a: ${present}\nb: x-${missing.deep}\n")
    with pytest.raises(RenderError) as err:
        render_template("t.yaml", {"present": 1, "missing": {}}, manifests_dir=tmp_path)
    assert err.value.key == "missing.deep"
    assert err.value.template == "t.yaml"
    assert "t.yaml" in str(err.value) and "${missing.deep}" in str(err.value)


def test_missing_ctx_key_for_a_real_template():
    ctx = mysql_ctx()
    del ctx["team"]
    with pytest.raises(RenderError) as err:
        render_mysql_claim(ctx)
    assert err.value.key == "team"
    assert "crossplane/cellmysqlclaim.yaml" in str(err.value)


def test_dict_inside_text_is_an_error(tmp_path):
    (tmp_path / "t.yaml").write_text("a: x-${d}\n")
    with pytest.raises(RenderError):
        render_template("t.yaml", {"d": {"k": 1}}, manifests_dir=tmp_path)


@pytest.mark.parametrize("render,make_ctx", [
    (render_mysql_claim, mysql_ctx),
    (render_replication_claim, replication_ctx),
    (render_application, app_ctx),
])
def test_rendering_is_pure(render, make_ctx):
    ctx = make_ctx()
    before = copy.deepcopy(ctx)
    first = render(ctx)
    # mutating one result must not leak into the template cache or the ctx
    (first[0] if isinstance(first, list) else first)["metadata"]["labels"]["x"] = "y"
    second, third = render(ctx), render(ctx)
    assert second == third
    assert ctx == before


# ---------------------------------------------------- labels, paths, YAML out


SIDES = {"primary": ("oci", "oke-iad-1"), "secondary": ("aws", "eks-use1-1")}


def all_objects():
    """What one cell/env produces: both sides of MySQL and app, and replication."""
    return ([render_mysql_claim(mysql_ctx(name=f"payments-prod-{side}", side=side,
                                          cloud=cloud, cluster=cluster))
             for side, (cloud, cluster) in SIDES.items()]
            + [render_replication_claim(replication_ctx("oci-goldengate"))]
            + [render_application(app_ctx(name=f"payments-prod-{side}", side=side,
                                          cloud=cloud, cluster=cluster))
               for side, (cloud, cluster) in SIDES.items()])


def test_every_object_carries_platform_labels_and_revision():
    for obj in all_objects():
        labels, notes = obj["metadata"]["labels"], obj["metadata"]["annotations"]
        for key in ("cell", "environment", "cluster", "team"):
            assert labels[LABEL + key], (obj["kind"], key)
        if obj["kind"] != "ReplicationClaim":  # the only object that spans both sides
            assert labels[LABEL + "side"] in ("primary", "secondary"), obj["kind"]
        assert isinstance(notes[LABEL + "revision"], str)
        assert all(isinstance(v, str) for v in labels.values())
        assert all(isinstance(v, str) for v in notes.values())


def test_object_path():
    claim = render_mysql_claim(mysql_ctx())
    assert object_path(claim) == (
        "clusters/oke-iad-1/cell-payments-prod/cellmysqlclaim-payments-prod-primary.yaml")
    app = render_application(app_ctx())
    assert object_path(app) == "clusters/eks-use1-1/argocd/application-payments-prod-secondary.yaml"
    xrd = platform.for_cluster("eks-use1-1", "aws")[0]  # cluster-scoped: the platform package
    assert object_path(xrd) == (
        "clusters/eks-use1-1/_cluster/compositeresourcedefinition-cellmysqlclaims.platform.idp-multicloud.io.yaml")
    paths = [object_path(o) for o in all_objects()]
    assert len(paths) == len(set(paths))
    with pytest.raises(RenderError):
        object_path({"kind": "X", "metadata": {"name": "n", "labels": {}}})


def test_to_yaml_round_trips_in_template_order():
    objects = all_objects()
    text = to_yaml(objects)
    assert list(yaml.safe_load_all(text)) == objects
    assert text.startswith("---\napiVersion:")
    assert "&id" not in text and "*id" not in text  # no YAML anchors/aliases
    assert to_yaml(objects) == text
