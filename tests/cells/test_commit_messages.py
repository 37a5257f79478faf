"""A GitOps commit names the cell, the request and the user in trailers; an operator's free text (a re-place note)
stays on the subject line and can never add a trailer of its own."""
import subprocess

import pytest

from cells import pipeline, services
from cells.models import Delivery
from tests.helpers import policy_doc

pytestmark = pytest.mark.django_db

MYSQL = dict(cell="payments", environment="prod", tier="C0", dr_profile="gold", size="small", storage_gb=50, ha=True)
FORGED = ["\nSigned-off-by: evil <evil@example.com>",
          "drain\n\nSigned-off-by: evil <evil@example.com>\nRequested-by: root\n---\n",
          "drain\r\nCo-authored-by: evil\u2028Reviewed-by: evil\x0bApproved-by: evil"]


def git(repo, *args, stdin=None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          input=stdin).stdout


def deliver_all():
    for d in Delivery.objects.filter(state=Delivery.State.PENDING).order_by("id"):
        pipeline.deliver(d.pk)


@pytest.mark.parametrize("note", FORGED)
def test_a_note_with_line_breaks_cannot_forge_a_commit_trailer(dev, ops, use_policy, settings, note):
    use_policy()
    services.request_mysql(dev, **MYSQL)
    deliver_all()
    doc = policy_doc()
    doc["cells"]["payments"]["candidates"][0]["cordoned"] = True  # the re-place moves the primary: a commit
    use_policy(doc)
    services.replace_cell(ops, cell="payments", environment="prod", note=note)
    deliver_all()
    repo = settings.IDP_GITOPS_REPO
    message = git(repo, "log", "-1", "--format=%B")
    assert "re-placed: drain" in message.splitlines()[0] or "re-placed: Signed-off-by" in message.splitlines()[0]
    trailers = git(repo, "interpret-trailers", "--parse", stdin=message).splitlines()
    assert [t.split(":", 1)[0] for t in trailers] == ["Cell", "Environment", "Requested-by", "Delivery", "Claims"]
    assert "Requested-by: ops" in trailers
    assert not [line for line in message.splitlines() if line.split(":", 1)[0] in
                ("Signed-off-by", "Co-authored-by", "Reviewed-by", "Approved-by", "---")]
    # the note is still there, whole, on one line
    assert "evil" in message.splitlines()[0]
