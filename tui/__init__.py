"""spatialmix-tui: the terminal front end over run folders."""
