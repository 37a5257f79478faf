"""What dr does when cells reports a change: a replication claim that turned Ready gets its replication set up."""


def replication_ready(sender, claim, **kwargs) -> None:
    from . import tasks

    tasks.setup_replication.delay(claim.pk)
