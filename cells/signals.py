"""Domain signals cells sends and other apps (dr) act on, so dependencies keep pointing dr -> cells."""
from django.dispatch import Signal

# A claim turned Ready for its current revision (sender: the claim's model; kwarg: claim).
claim_ready = Signal()
