"""Domain signals cells sends and other apps (dr) act on, so dependencies keep pointing dr -> cells."""
from django.dispatch import Signal

# A claim turned Ready for its current revision (sender: the claim's model; kwarg: claim).
claim_ready = Signal()
# The next two are sent with send_robust after commit: a receiver that fails never stops the pipeline.
# A claim failed (sender: the claim's model; kwargs: claim, message): its delivery gave up, or the cluster reports
# it failed (sent on the transition to failed, not on every observation of it).
claim_failed = Signal()
# The status source measured a replication claim's lag (sender: ReplicationClaim; kwargs: claim, lag_seconds).
replication_lag_measured = Signal()
