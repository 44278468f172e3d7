"""The PySide6 application: a window onto the core flow; no physics here."""
