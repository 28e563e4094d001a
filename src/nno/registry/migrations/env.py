from nno.kernel.migrations import run_env
from nno.registry.models import Base

run_env(Base.metadata)
