"""fairdistill tasks."""
