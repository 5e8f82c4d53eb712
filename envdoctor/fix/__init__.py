"""envdoctor fix: the plan (plan.py), the lockfile (lock.py, verify.py, locktypes.py),
the curated lockfiles (curated.py), the static check of a pinned set (pinned.py), and the
command that ties them (command.py)."""
