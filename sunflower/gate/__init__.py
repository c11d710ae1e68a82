"""Smart gate: residents' faces open their community's gates (issue 4)."""
