"""The deployment (Dockerfile, manifests/deploy/) is what a platform team can apply: every object is valid for the
Kubernetes version we pin (offline schemas, kubernetes-validate, strict: unknown fields are errors), the probes
point at /healthz and /readyz, one beat, nothing runs as root, every container has resources, secrets are only
referenced, and the image runs gunicorn as a non-root user."""
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "manifests" / "deploy"
KUBERNETES_VERSION = "1.31.0"  # the oldest version we support; the package ships schemas 1.25 to 1.37
NOT_OBJECTS = {"kustomization.yaml"}
WORKLOAD_KINDS = {"Deployment", "Job"}


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if p.name not in NOT_OBJECTS)


def objects() -> list[tuple[str, dict]]:
    out = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


def by_name(kind: str, name: str) -> dict:
    return next(doc for _, doc in objects() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def workloads() -> list[tuple[str, dict]]:
    return [(where, doc) for where, doc in objects() if doc["kind"] in WORKLOAD_KINDS]


def containers(doc: dict) -> list[dict]:
    spec = doc["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_the_pinned_kubernetes_version_is_shipped_by_kubernetes_validate():
    from kubernetes_validate.utils import all_versions

    assert KUBERNETES_VERSION in all_versions()


@pytest.mark.parametrize("where,doc", objects(), ids=[w for w, _ in objects()])
def test_every_object_validates_against_the_pinned_kubernetes_version(where, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_deployment_has_every_piece():
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in objects()}
    assert {("Deployment", "idp-web"), ("Deployment", "idp-worker"), ("Deployment", "idp-beat"), ("Job", "idp-migrate"),
            ("Service", "idp-web"), ("ConfigMap", "idp-multicloud"), ("ServiceAccount", "idp-multicloud")} <= kinds
    assert any(kind == "NetworkPolicy" for kind, _ in kinds)
    assert not any(kind == "Secret" for kind, _ in kinds)  # the operator creates it: no literal secret in the repository


def test_the_kustomizations_list_every_manifest_and_one_image():
    main = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    jobs = yaml.safe_load((DEPLOY / "jobs" / "kustomization.yaml").read_text())
    assert set(main["resources"]) == {p.name for p in DEPLOY.glob("*.yaml") if p.name not in NOT_OBJECTS}
    assert set(jobs["resources"]) == {p.name for p in (DEPLOY / "jobs").glob("*.yaml") if p.name not in NOT_OBJECTS}
    assert main["images"] == jobs["images"] and main["namespace"] == jobs["namespace"]
    images = {c["image"].split(":")[0] for _, doc in workloads() for c in containers(doc)}
    assert images == {main["images"][0]["name"]}  # every container runs the image the kustomizations set


def test_web_probes_point_at_healthz_and_readyz():
    web = containers(by_name("Deployment", "idp-web"))[0]
    port = web["ports"][0]
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["timeoutSeconds"] > 2  # longer than the broker check (IDP_READYZ_BROKER_TIMEOUT)
    assert f"0.0.0.0:{port['containerPort']}" in web["command"]
    service = by_name("Service", "idp-web")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert service["spec"]["selector"].items() <= by_name("Deployment", "idp-web")["spec"]["template"]["metadata"]["labels"].items()


def test_beat_is_a_single_replica_that_is_never_doubled():
    beat = by_name("Deployment", "idp-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert containers(beat)[0]["command"][:4] == ["celery", "-A", "portal", "beat"]
    worker = containers(by_name("Deployment", "idp-worker"))[0]
    assert worker["command"][:4] == ["celery", "-A", "portal", "worker"]
    assert "--beat" not in worker["command"] and "-B" not in worker["command"]


def test_the_migration_job_migrates():
    job = by_name("Job", "idp-migrate")
    assert containers(job)[0]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("where,doc", workloads(), ids=[w for w, _ in workloads()])
def test_no_container_runs_as_root(where, doc):
    pod = doc["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    for container in containers(doc):
        security = container["securityContext"]
        assert security.get("runAsUser", pod["runAsUser"]) != 0
        assert security["runAsNonRoot"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/lib/idp"} <= mounts  # the writable places, as emptyDir volumes


@pytest.mark.parametrize("where,doc", workloads(), ids=[w for w, _ in workloads()])
def test_every_container_has_requests_and_limits(where, doc):
    for container in containers(doc):
        resources = container["resources"]
        assert set(resources["requests"]) >= {"cpu", "memory"}, container["name"]
        assert set(resources["limits"]) >= {"cpu", "memory"}, container["name"]


SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|API_KEY|DATABASE_URL|BROKER_URL")


@pytest.mark.parametrize("where,doc", workloads(), ids=[w for w, _ in workloads()])
def test_secrets_are_only_referenced(where, doc):
    for container in containers(doc):
        for env in container.get("env", []):
            if SECRET_NAME.search(env["name"]):
                assert "value" not in env and "secretKeyRef" in env["valueFrom"], env["name"]
    config = by_name("ConfigMap", "idp-multicloud")["data"]
    assert not [k for k, v in config.items() if SECRET_NAME.search(k) and not v.startswith("/")]


def secret_keys() -> set[str]:
    keys = set()
    for _, doc in workloads():
        for container in containers(doc):
            keys |= {e["valueFrom"]["secretKeyRef"]["key"] for e in container.get("env", [])
                     if "secretKeyRef" in e.get("valueFrom", {})}
    return keys


def test_the_readme_documents_every_secret_key():
    readme = (ROOT / "README.md").read_text()
    deploying = readme[readme.index("## Deploying"):]
    deploying = deploying[:deploying.index("\n## ", 1)] if "\n## " in deploying[1:] else deploying
    assert secret_keys() >= {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"}
    assert [k for k in sorted(secret_keys()) if f"`{k}`" not in deploying] == []


# -- the Dockerfile -------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def instruction(name: str) -> list[str]:
    return [args for ins, args in dockerfile() if ins == name]


def test_the_image_runs_gunicorn_as_a_non_root_user():
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", instruction("FROM")[-1])
    user = instruction("USER")[-1]
    assert user.split(":")[0] not in ("0", "root")
    uid = int(user.split(":")[0])
    pods = {doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] for _, doc in workloads()}
    assert pods == {uid}  # the manifests run the image's user
    cmd = yaml.safe_load(instruction("CMD")[-1])  # the exec form is a JSON (YAML) list
    assert cmd[:2] == ["gunicorn", "portal.wsgi"]
    web = containers(by_name("Deployment", "idp-web"))[0]
    assert f"{cmd[cmd.index('--bind') + 1]}" == f"0.0.0.0:{web['ports'][0]['containerPort']}"
    assert instruction("EXPOSE") == [str(web["ports"][0]["containerPort"])]


def test_the_image_installs_the_requirements_and_collects_static_files():
    runs = " ".join(instruction("RUN"))
    assert "pip install -r requirements.txt" in runs
    assert "manage.py collectstatic --noinput" in runs
    env = dict(pair.split("=", 1) for args in instruction("ENV") for pair in shlex.split(args) if "=" in pair)
    assert env["DJANGO_DEBUG"] == "0" and env["LOG_FORMAT"] == "json"
    assert env["DJANGO_STATIC_ROOT"] == "/app/staticfiles"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)  # no checkout environment or local data in the image
