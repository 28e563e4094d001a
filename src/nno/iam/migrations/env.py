from nno.iam.models import Base
from nno.kernel.migrations import run_env

run_env(Base.metadata)
