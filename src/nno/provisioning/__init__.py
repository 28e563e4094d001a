"""Provisioning: the job state machine that creates platforms' resources."""
