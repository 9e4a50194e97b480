"""New-media accounts: the register, lifecycle requests and approvals, tracked duties, posting cadence (issue 18)."""
