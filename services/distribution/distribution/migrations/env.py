from distribution.models import Base

from shared import idempotency, memberships, throttle
from shared.migrations import run_env

run_env(Base.metadata, extra_metadata=(idempotency.metadata, throttle.metadata, memberships.metadata))
