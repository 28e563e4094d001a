"""NNO IAM: accounts, sessions, organizations, roles and grants, API keys, device flow, audit."""
