"""Rollout: which version answers whom (sticky A/B shares, blind comparisons against
production), the gates a candidate must pass, promotion and rollback (docs/rollout.md).

    from tandem.rollout.routing import applicable_rollout, assigned_version
    from tandem.rollout.gates import check_gates
    from tandem.rollout.promotion import promote, rollback

Nothing is imported here on purpose: the chat service imports `routing` alone (it needs only the
store), without pulling in the evals the gates read.
"""
