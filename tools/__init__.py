"""hakit.tools — the operator tools behind the `hakit` command."""
