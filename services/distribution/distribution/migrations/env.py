from distribution.models import Base

from shared import memberships, throttle
from shared.migrations import run_env

run_env(Base.metadata, extra_metadata=(throttle.metadata, memberships.metadata))
