from forum.models import Base

from shared import idempotency, mail, throttle
from shared.migrations import run_env

run_env(Base.metadata, extra_metadata=(idempotency.metadata, throttle.metadata, mail.metadata))
