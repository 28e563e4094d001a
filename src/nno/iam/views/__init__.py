"""HTTP routers of IAM. `auth` and `orgs` (and the session route) are shared with per-platform auth
apps; the rest are NNO-only."""
