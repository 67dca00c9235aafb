"""fairdistill flows."""
