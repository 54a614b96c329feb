"""The `seaway` command line: thin Typer commands over library functions."""
