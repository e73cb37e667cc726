"""The workflow's Redshift SQL as text, in Redshift's own dialect: pure functions, no I/O."""
