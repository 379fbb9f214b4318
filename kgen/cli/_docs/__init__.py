"""Generators for the operations surface: shell completions, man pages and systemd units.

They walk the typer command tree (typer vendors its own click, so click-based generators do not
see it) and produce static text; nothing here runs at `kgen --help` time.
"""
