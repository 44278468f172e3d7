"""Views of the workstation, one module per view."""
