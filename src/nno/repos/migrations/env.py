from nno.kernel.migrations import run_env
from nno.repos.models import Base

run_env(Base.metadata)
