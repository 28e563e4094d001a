from nno.kernel.migrations import run_env
from nno.provisioning.models import Base

run_env(Base.metadata)
