"""Developer tools (screenshots); not part of the clinical application."""
