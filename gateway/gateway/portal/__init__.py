"""The web portal: the pages people use in a browser, served by the gateway.

`portal` is the Blueprint. views.py holds the home page, signing in and out, the security
headers every page carries and HTML error pages for paths outside `/api/`; accounts.py the
pages of one's own account (register, confirm, forgotten password, invitation, my account);
profiles.py the pages of one customer profile (users and rights, addresses and delivery);
licensing.py its licenses and product registration; distribution.py its downloads, download
history, documents and news (markdown.py: their texts as safe minimal Markdown); forum.py the
forum's pages. calls.py is how they all ask the services and turn their problem+json answers
into messages; every form there that creates something carries a fresh idempotency key per
rendering (`calls.IDEMPOTENCY_FIELD`), sent on as `Idempotency-Key`, so the same form sent twice
creates one thing (forms.js also sends such a form once in the browser).
`i18n.init_app` sets up Flask-Babel (Czech by default, English on request). Sign-in uses
the same function as the sessions API (`gateway.api.sign_in`); the portal holds no state
of its own beyond the language and profile cookies and a short-lived form token (forms.py).
"""

from gateway.portal import accounts, distribution, forum, i18n, licensing, profiles
from gateway.portal.views import portal

__all__ = ["accounts", "distribution", "forum", "i18n", "licensing", "portal", "profiles"]
