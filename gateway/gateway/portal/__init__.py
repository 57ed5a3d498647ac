"""The web portal: the pages people use in a browser, served by the gateway.

`portal` is the Blueprint (views.py): the home page and signing in and out for now, the
security headers every page carries, and HTML error pages for paths outside `/api/`.
`i18n.init_app` sets up Flask-Babel (Czech by default, English on request). Sign-in uses
the same function as the sessions API (`gateway.api.sign_in`); the portal holds no state
of its own beyond the language cookie and a short-lived form token (forms.py).
"""

from gateway.portal import i18n
from gateway.portal.views import portal

__all__ = ["i18n", "portal"]
