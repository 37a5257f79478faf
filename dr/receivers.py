"""What dr does when cells reports a change: a replication claim that turned Ready gets its replication set up; a
claim that failed, or a lag measured above the RPO, is told (dr/notices.py); a claim turning ready or failed has its
cell environment's readiness evaluated again, and each lag measured is kept as a sample (dr/readiness.py, dr/lag.py)."""
import logging

log = logging.getLogger(__name__)


def replication_ready(sender, claim, **kwargs) -> None:
    from . import tasks

    tasks.setup_replication.delay(claim.pk)


def claim_failed(sender, claim, message, **kwargs) -> None:
    from . import notices

    notices.claim_failed(claim, message)


def replication_lag_measured(sender, claim, lag_seconds, **kwargs) -> None:
    from . import notices

    notices.lag_measured(claim.cell_env, lag_seconds, claim.expected_rpo_seconds)


def readiness_changed(sender, claim, **kwargs) -> None:
    """claim_ready / claim_failed: evaluate the cell environment's readiness again (debounced, after commit)."""
    from . import readiness

    try:
        readiness.schedule(claim.cell_env_id)
    except Exception:  # noqa: BLE001 - claim_ready is sent with send(): never break the status reader
        log.exception("readiness of cell environment %s not scheduled", claim.cell_env_id)


def lag_sampled(sender, claim, lag_seconds, **kwargs) -> None:
    """replication_lag_measured: a lag sample; `claim` is the row as it was before this measurement."""
    from . import readiness

    readiness.lag_measured(claim.cell_env_id, claim.lag_seconds, lag_seconds, claim.expected_rpo_seconds)
