"""One module per ``drsn-edge`` sub-command (see :data:`drsn_edge.cli.COMMANDS`)."""
