from nno.kernel.migrations import run_env
from nno.stacks.models import Base

run_env(Base.metadata)
