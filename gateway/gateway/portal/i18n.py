"""The portal's languages: Czech by default, English on request.

The source strings are English, written as `_("...")` in the templates and views. Each
language has a catalog, `translations/<lang>/LC_MESSAGES/messages.po`: Czech is translated,
English is left empty so the source strings show. `?lang=en` or `?lang=cs` on any page picks
a language and the `lang` cookie keeps it; the browser's Accept-Language is not consulted,
because the portal is Czech first.

Flask-Babel reads compiled `.mo` files. We do not keep them in the repository: the `.po` is
the one file people edit, and `init_app` compiles every catalog whose `.mo` is missing or
older than its `.po` when the app starts (a few milliseconds). So a fresh clone works with no
extra build step. Where the package folder is read-only (an image run as another user), the
`.mo` files go to a temporary folder instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, has_request_context, request
from flask_babel import Babel

log = logging.getLogger(__name__)

LANGUAGES = ("cs", "en")
DEFAULT_LANGUAGE = "cs"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
QUERY_PARAMETER = "lang"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def init_app(app: Flask) -> None:
    directory = compile_catalogs(TRANSLATIONS)
    Babel(
        app,
        default_locale=DEFAULT_LANGUAGE,
        default_translation_directories=str(directory),
        locale_selector=select_language,
    )


def asked_language() -> str | None:
    """The language this request asks for with `?lang=`, if it is one we have."""
    asked = request.args.get(QUERY_PARAMETER)
    return asked if asked in LANGUAGES else None


def select_language() -> str:
    if not has_request_context():
        return DEFAULT_LANGUAGE
    kept = request.cookies.get(COOKIE)
    return asked_language() or (kept if kept in LANGUAGES else DEFAULT_LANGUAGE)


def compile_catalogs(source: Path) -> Path:
    """Compile each `messages.po` under `source` whose `.mo` is missing or stale; return the
    folder Flask-Babel should read the `.mo` files from."""
    try:
        _compile_into(source, source)
        return source
    except OSError as error:
        target = Path(tempfile.mkdtemp(prefix="portal-translations-"))
        log.info("translations folder not writable (%s); compiling into %s", error, target)
        _compile_into(source, target)
        return target


def _compile_into(source: Path, target: Path) -> None:
    for po_path in sorted(source.glob("*/LC_MESSAGES/*.po")):
        mo_path = target / po_path.relative_to(source).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parts[-3])
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        # Several gunicorn workers may start at once: write aside, then rename atomically.
        partial = mo_path.with_name(f"{mo_path.name}.{os.getpid()}.tmp")
        with partial.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        os.replace(partial, mo_path)
