"""Uploaded files (photos, meeting papers, proxy authorisations), kept outside the database."""
