from nno.kernel.migrations import run_env
from nno.billing.models import Base

run_env(Base.metadata)
