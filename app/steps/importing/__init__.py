"""The import step: a DICOM folder into the store, with its structure sets as draft VOIs."""
