"""A module-level WSGI application for any WSGI server::

    COHESION_MAIL_CONFIG=/srv/news/cohesion-mail.toml \\
    COHESION_MAIL_STATE=/srv/news/.cohesion-mail/state.db \\
    COHESION_MAIL_SECRET=… \\
    gunicorn --workers 2 --threads 8 --bind 127.0.0.1:8080 'cohesion_mail.tracking.wsgi:app'

Settings and the state path follow the usual order (environment, then ``cohesion-mail.toml``
found from the working directory, then defaults). With several worker processes, set
``COHESION_MAIL_SECRET`` (or start once with ``cohesion-mail serve``) so every worker signs with
the same secret as ``send``.
"""

from __future__ import annotations

from ..config import load_settings
from ..errors import CohesionMailError
from .app import create_app

try:
    _settings = load_settings()
    app = create_app(_settings.state_path(), _settings)
except CohesionMailError as exc:  # a WSGI host shows this instead of a traceback
    raise SystemExit(f"cohesion-mail: {exc}") from None

application = app  # the name mod_wsgi and some hosts look for
