"""The e-mails identity sends, queued in the transaction that causes them.

Each function writes its mail with `shared.mail.queue()` as an `outgoing_mail` row next to
the change (a registration, an invitation): if the transaction commits the mail will go out,
if it rolls back no mail mentions a change that never happened. `python -m shared.mailer
identity` sends the rows. Mails are in Czech first, then English, since we do not know the
reader's language yet.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from shared.mail import queue

SIGNATURE = "Zákaznické centrum / Customer Center"


def _when(moment: datetime) -> str:
    return moment.strftime("%d. %m. %Y %H:%M UTC")


def confirm_registration(
    session: Session, recipient: str, name: str, company: str, link: str, expires_at: datetime
) -> None:
    queue(
        session,
        recipient,
        "Potvrďte registraci do Zákaznického centra / Confirm your registration",
        f"""Dobrý den, {name},

děkujeme za registraci firmy {company} do Zákaznického centra. Registraci dokončíte
otevřením tohoto odkazu do {_when(expires_at)}:

{link}

Pokud jste se neregistrovali, tento e-mail ignorujte; registrace po uplynutí lhůty zanikne.

---
Hello {name},

thank you for registering {company} with the Customer Center. Open this link before
{_when(expires_at)} to finish:

{link}

If you did not register, ignore this e-mail; the registration lapses when the time is up.

{SIGNATURE}
""",
    )


def confirm_added_profile(
    session: Session, recipient: str, name: str, company: str, link: str, expires_at: datetime
) -> None:
    """A registration with an address that has an account: confirming adds the company to it."""
    queue(
        session,
        recipient,
        f"Potvrďte přidání firmy {company} / Confirm adding {company}",
        f"""Dobrý den, {name},

s vaší e-mailovou adresou byla zaregistrována firma {company}. Otevřením tohoto odkazu do
{_when(expires_at)} se stanete administrátorem jejího profilu ve svém stávajícím účtu:

{link}

Přihlašujete se dál svým dosavadním heslem; heslo zadané při registraci se nepoužije.
Pokud jste firmu neregistrovali, tento e-mail ignorujte; registrace po uplynutí lhůty zanikne.

---
Hello {name},

{company} was registered with your e-mail address. Open this link before
{_when(expires_at)} to become the administrator of its profile in your existing account:

{link}

You keep signing in with your current password; the one given when registering is not used.
If you did not register the company, ignore this e-mail; the registration lapses when the
time is up.

{SIGNATURE}
""",
    )


def invitation(
    session: Session, recipient: str, name: str, company: str, inviter: str, link: str, expires_at: datetime
) -> None:
    queue(
        session,
        recipient,
        f"Pozvánka do Zákaznického centra: {company} / Invitation to the Customer Center",
        f"""Dobrý den, {name},

{inviter} vám zřídil(a) přístup k profilu firmy {company} v Zákaznickém centru.
Heslo si nastavíte zde (odkaz platí do {_when(expires_at)}):

{link}

---
Hello {name},

{inviter} has given you access to the profile of {company} in the Customer Center.
Set your password here (the link works until {_when(expires_at)}):

{link}

{SIGNATURE}
""",
    )


def membership_invitation(
    session: Session, recipient: str, name: str, company: str, inviter: str, link: str, expires_at: datetime
) -> None:
    """An invitation to a person who has an account: they join once they accept."""
    queue(
        session,
        recipient,
        f"Pozvánka k profilu firmy {company} / Invitation to {company}",
        f"""Dobrý den, {name},

{inviter} vás zve k profilu firmy {company} v Zákaznickém centru. Pozvánku přijmete
otevřením tohoto odkazu do {_when(expires_at)}; přihlašujete se dál svým dosavadním heslem:

{link}

Pokud k profilu patřit nechcete, tento e-mail ignorujte.

---
Hello {name},

{inviter} invites you to the profile of {company} in the Customer Center. Open this link
before {_when(expires_at)} to accept; you keep signing in with your current password:

{link}

If you do not want to join, ignore this e-mail.

{SIGNATURE}
""",
    )


def password_reset(session: Session, recipient: str, name: str, link: str, expires_at: datetime) -> None:
    queue(
        session,
        recipient,
        "Obnovení hesla do Zákaznického centra / Reset your password",
        f"""Dobrý den, {name},

nové heslo si nastavíte zde (odkaz platí do {_when(expires_at)} a jen jednou):

{link}

Pokud jste o obnovení nežádali, e-mail ignorujte; vaše heslo zůstává beze změny.

---
Hello {name},

set a new password here (the link works once, until {_when(expires_at)}):

{link}

If you did not ask for this, ignore this e-mail; your password stays as it is.

{SIGNATURE}
""",
    )
