"""The screens of spatialmix-tui, one module each: recipes (pick and start), runs (watch,
compare, cancel, resume), results (table, report, figure) and the key help."""
