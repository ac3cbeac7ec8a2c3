"""A stored file (webapp.ops.storage) as a download response."""

import os

from flask import send_file

from .storage import get_storage, key_for


def download_response(path, area, download_name, mimetype, storage=None):
    """A Flask response sending the file: from this machine's disk when it
    is here, else streamed from the storage in chunks. None when it is gone."""
    if not os.path.exists(path):
        try:
            path = (storage or get_storage()).open(key_for(path, area))
        except FileNotFoundError:
            return None
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=download_name)
