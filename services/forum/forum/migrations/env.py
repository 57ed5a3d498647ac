from forum.models import Base

from shared import mail, throttle
from shared.migrations import run_env

run_env(Base.metadata, extra_metadata=(throttle.metadata, mail.metadata))
