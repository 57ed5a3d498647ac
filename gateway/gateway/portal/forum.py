"""The forum's pages (`/forum/...`), for every signed-in person whatever their rights:
categories with a search box, a category's topics, starting a topic, a topic with its
solution first and a reply box, editing one's own post with its history, search, one's
watched topics and categories, and for staff the moderation buttons and the flagged posts.
`/forum/unsubscribe` is the link in the forum's notification e-mails: it works without
signing in, and only its button (a POST) ends the watch, so a mail scanner that follows the
link changes nothing.

The forum service answers all of it and decides who may do what; the portal shows its
answers (post bodies come rendered and sanitised by the forum, shown as they are) and turns
its problems into messages. Every form posts to its own route and redirects back to the
page it came from; a failure shows that page again with the message.
"""

from __future__ import annotations

from flask import Response, redirect, request, url_for
from flask_babel import gettext as _

from gateway.portal import calls, forms
from gateway.portal.accounts import EXPIRED_FORM, _expired_form, signed_in_form, signed_in_page
from gateway.portal.dates import date_time
from gateway.portal.views import caller, form_page, page, portal, shown_page
from shared.problems import Problem
from shared.web import accepts_raw_body

API = "/api/v1/forum"
ADMIN_API = "/api/v1/admin/forum"
TOPICS_PER_PAGE = 25
POSTS_PER_PAGE = 50
# A link to a post (`?post=`) walks the topic's pages to the one that holds it; a topic
# longer than this many pages opens at the last page walked instead.
MAX_PAGES_TO_FIND_A_POST = 20
MAX_QUERY = 200  # the forum's limit for a search


# --- categories ---------------------------------------------------------------------------
@portal.get("/forum")
@signed_in_page
def forum_index():
    return _index_page(done=request.args.get("done"))


@portal.post("/forum/categories")
@signed_in_form
def forum_new_category():
    values = {
        "name": request.form.get("name", "").strip(),
        "description": request.form.get("description", "").strip(),
        "product": request.form.get("product", "").strip() or None,
    }
    answer = calls.call("POST", f"{ADMIN_API}/categories", values, idempotent=True)
    if answer.ok:
        return redirect(url_for("portal.forum_index", done="category"), 303)
    return _index_page(answer.status, answer.headers, new_category=values, **failure(answer))


def _index_page(status=200, headers=None, message=None, errors=None, new_category=None, done=None) -> Response:
    listing = calls.fetch(f"{API}/categories")
    shown_page("portal.forum_index")
    return page(
        "portal/forum_index.html",
        status,
        headers,
        active="forum",
        categories=[_category(item) for item in listing.get("items") or []],
        staff=is_staff(),
        new_category=new_category or {},
        message=message,
        errors=errors or {},
        done=done,
    )


@portal.get("/forum/categories/<int:category_id>")
@signed_in_page
def forum_category(category_id: int):
    return _category_page(category_id, done=request.args.get("done"))


def _category_page(category_id: int, status=200, headers=None, message=None, done=None) -> Response:
    category = calls.fetch(f"{API}/categories/{category_id}")
    cursor = request.args.get("cursor") or None
    query = {"limit": TOPICS_PER_PAGE} | ({"cursor": cursor} if cursor else {})
    answer = calls.call("GET", f"{API}/categories/{category_id}/topics", query=query)
    if answer.status in (400, 422) and cursor:
        # A cursor from an old link (or edited by hand): start again from the first page.
        return redirect(url_for("portal.forum_category", category_id=category_id), 303)
    if not answer.ok:
        raise calls.page_error(answer)
    shown_page("portal.forum_category", category_id=category_id)
    return page(
        "portal/forum_category.html",
        status,
        headers,
        active="forum",
        category=category,
        topics=[_topic_summary(item) for item in answer.body.get("items") or []],
        cursor=cursor,
        next_cursor=answer.body.get("next"),
        message=message,
        done=done,
    )


@portal.post("/forum/categories/<int:category_id>/watch")
@signed_in_form
def forum_watch_category(category_id: int):
    return _watch("categories", category_id)


# --- starting a topic ---------------------------------------------------------------------
@portal.get("/forum/categories/<int:category_id>/new")
@signed_in_page
def forum_new_topic_form(category_id: int):
    return _new_topic_page(category_id)


@portal.post("/forum/categories/<int:category_id>/new")
@signed_in_form
def forum_new_topic(category_id: int):
    values = {"title": request.form.get("title", "").strip(), "body": request.form.get("body", "")}
    answer = calls.call("POST", f"{API}/topics", {"category_id": category_id} | values, idempotent=True)
    if answer.ok and answer.body.get("id"):
        return redirect(url_for("portal.forum_topic", topic_id=answer.body["id"], done="created"), 303)
    return _new_topic_page(category_id, answer.status, answer.headers, values, **failure(answer))


def _new_topic_page(category_id: int, status=200, headers=None, values=None, message=None, errors=None):
    category = calls.fetch(f"{API}/categories/{category_id}")
    return page(
        "portal/forum_new_topic.html",
        status,
        headers,
        active="forum",
        category=category,
        values=values or {},
        message=message,
        errors=errors or {},
    )


# --- a topic ------------------------------------------------------------------------------
@portal.get("/forum/topics/<int:topic_id>")
@signed_in_page
def forum_topic(topic_id: int):
    return _topic_page(topic_id, done=request.args.get("done"))


@portal.post("/forum/topics/<int:topic_id>/posts")
@signed_in_form
def forum_reply(topic_id: int):
    body = request.form.get("body", "")
    answer = calls.call("POST", f"{API}/topics/{topic_id}/posts", {"body": body}, idempotent=True)
    if answer.ok and answer.body.get("id"):
        return redirect(_post_url(topic_id, answer.body["id"], done="replied"), 303)
    return _topic_page(topic_id, answer.status, answer.headers, reply=body, **failure(answer))


@portal.post("/forum/topics/<int:topic_id>/solution")
@signed_in_form
def forum_mark_solution(topic_id: int):
    post_id = _int(request.form.get("post_id"))
    if post_id is not None:
        answer = calls.call("PUT", f"{API}/topics/{topic_id}/solution", {"post_id": post_id})
    else:
        answer = calls.call("DELETE", f"{API}/topics/{topic_id}/solution")
    if answer.ok:
        return redirect(url_for("portal.forum_topic", topic_id=topic_id, done="solved" if post_id else "unsolved"), 303)
    return _topic_page(topic_id, answer.status, answer.headers, message=problem_message(answer))


@portal.post("/forum/topics/<int:topic_id>/watch")
@signed_in_form
def forum_watch_topic(topic_id: int):
    return _watch("topics", topic_id)


@portal.post("/forum/topics/<int:topic_id>/posts/<int:post_id>/flag")
@signed_in_form
def forum_flag_post(topic_id: int, post_id: int):
    reason = request.form.get("reason", "").strip()
    answer = calls.call("POST", f"{API}/posts/{post_id}/flags", {"reason": reason}, idempotent=True)
    if answer.ok:
        return redirect(_post_url(topic_id, post_id, done="flagged"), 303)
    return _topic_page(topic_id, answer.status, answer.headers, message=problem_message(answer))


def _topic_page(topic_id: int, status=200, headers=None, message=None, errors=None, reply=None, done=None):
    asked = request.args.get("cursor") or None
    answer, cursor = _topic_answer(topic_id, asked, _int(request.args.get("post")))
    if answer.status in (400, 422) and asked:
        return redirect(url_for("portal.forum_topic", topic_id=topic_id), 303)
    if not answer.ok:
        raise calls.page_error(answer)
    topic = answer.body
    me = caller().session
    posts = [_post(item) for item in topic.get("posts") or []]
    question = posts.pop(0) if posts and cursor is None else None
    if reply is None:
        reply = _quote_for(topic_id, _int(request.args.get("quote")))
    staff = is_staff()
    shown_page("portal.forum_topic", topic_id=topic_id)
    return page(
        "portal/forum_topic.html",
        status,
        headers,
        active="forum",
        topic=topic,
        question=question,
        solution=_post(topic["solution"]) if topic.get("solution") else None,
        posts=posts,
        cursor=cursor,
        next_cursor=topic.get("next"),
        is_author=(topic.get("author") or {}).get("id") == me.user_id,
        my_id=me.user_id,
        csrf_token=me.csrf_token,  # for the post's forms: `caller` means something else in a macro
        staff=staff,
        can_reply=not topic.get("locked") or staff,
        categories=_categories_for_moving() if staff else [],
        reply=reply or "",
        message=message,
        errors=errors or {},
        done=done,
    )


def _topic_answer(topic_id: int, cursor: str | None, wanted: int | None) -> tuple[calls.Answer, str | None]:
    """The topic with one page of its posts, and that page's cursor: the page at `cursor`,
    or the page that holds post `wanted`."""
    path = f"{API}/topics/{topic_id}"
    query = {"limit": POSTS_PER_PAGE}
    if wanted is None:
        return calls.call("GET", path, query=query | ({"cursor": cursor} if cursor else {})), cursor
    cursor, walked = None, 0
    while True:
        answer = calls.call("GET", path, query=query | ({"cursor": cursor} if cursor else {}))
        walked += 1
        found = any(post.get("id") == wanted for post in answer.body.get("posts") or [])
        if not answer.ok or found or not answer.body.get("next") or walked >= MAX_PAGES_TO_FIND_A_POST:
            return answer, cursor
        cursor = answer.body["next"]


def _quote_for(topic_id: int, post_id: int | None) -> str:
    """The reply box's text for `?quote=`: the quoted post (the no-JavaScript way to quote)."""
    if post_id is None:
        return ""
    answer = calls.call("GET", f"{API}/posts/{post_id}")
    post = answer.body if answer.ok else {}
    if post.get("topic_id") != topic_id or not post.get("body"):
        return ""
    return quote((post.get("author") or {}).get("name") or "", post["body"])


def quote(author_name: str, body: str) -> str:
    """Markdown that quotes `body` by `author_name` (forum.js writes the same in the browser)."""
    lines = body.strip().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in lines)
    return f"> **{author_name}:**\n>\n{quoted}\n\n"


def _categories_for_moving() -> list[dict]:
    answer = calls.call("GET", f"{API}/categories")
    return answer.body.get("items") or [] if answer.ok else []


# --- staff moderation ---------------------------------------------------------------------
@portal.post("/forum/topics/<int:topic_id>/moderate")
@signed_in_form
def forum_moderate_topic(topic_id: int):
    change = {name: request.form[name] == "1" for name in ("pinned", "locked", "hidden") if name in request.form}
    category_id = _int(request.form.get("category_id"))
    if category_id is not None:
        change["category_id"] = category_id
    answer = calls.call("PATCH", f"{ADMIN_API}/topics/{topic_id}", change)
    if answer.ok:
        return redirect(url_for("portal.forum_topic", topic_id=topic_id, done="moderated"), 303)
    return _topic_page(topic_id, answer.status, answer.headers, message=problem_message(answer))


@portal.post("/forum/topics/<int:topic_id>/posts/<int:post_id>/moderate")
@signed_in_form
def forum_moderate_post(topic_id: int, post_id: int):
    hidden = request.form.get("hidden") == "1"
    answer = calls.call("PATCH", f"{ADMIN_API}/posts/{post_id}", {"hidden": hidden})
    if answer.ok:
        return redirect(_post_url(topic_id, post_id, done="post-hidden" if hidden else "post-shown"), 303)
    return _topic_page(topic_id, answer.status, answer.headers, message=problem_message(answer))


@portal.get("/forum/flags")
@signed_in_page
def forum_flags():
    return _flags_page(done=request.args.get("done"))


@portal.post("/forum/flags/<int:flag_id>/resolve")
@signed_in_form
def forum_resolve_flag(flag_id: int):
    action = request.form.get("action", "")
    answer = calls.call("POST", f"{ADMIN_API}/flags/{flag_id}/resolve", {"action": action})
    if answer.ok:
        return redirect(url_for("portal.forum_flags", done="hidden" if action == "hide" else "dismissed"), 303)
    return _flags_page(answer.status, answer.headers, message=problem_message(answer))


def _flags_page(status=200, headers=None, message=None, done=None) -> Response:
    if not is_staff():
        raise Problem(403)
    cursor = request.args.get("cursor") or None
    query = {"status": "open"} | ({"cursor": cursor} if cursor else {})
    answer = calls.call("GET", f"{ADMIN_API}/flags", query=query)
    if answer.status in (400, 422) and cursor:
        return redirect(url_for("portal.forum_flags"), 303)
    if not answer.ok:
        raise calls.page_error(answer)
    shown_page("portal.forum_flags")
    flags = [
        item | {"when": date_time(item.get("created_at")), "post": _post(item.get("post") or {})}
        for item in answer.body.get("items") or []
    ]
    return page(
        "portal/forum_flags.html",
        status,
        headers,
        active="forum",
        flags=flags,
        cursor=cursor,
        next_cursor=answer.body.get("next"),
        message=message,
        done=done,
    )


# --- editing one's own post ---------------------------------------------------------------
@portal.get("/forum/posts/<int:post_id>/edit")
@signed_in_page
def forum_edit_post_form(post_id: int):
    return _edit_page(post_id)


@portal.post("/forum/posts/<int:post_id>/edit")
@signed_in_form
def forum_edit_post(post_id: int):
    body = request.form.get("body", "")
    answer = calls.call("PATCH", f"{API}/posts/{post_id}", {"body": body})
    if answer.ok and answer.body.get("topic_id"):
        return redirect(_post_url(answer.body["topic_id"], post_id, done="edited"), 303)
    return _edit_page(post_id, answer.status, answer.headers, body, **failure(answer))


def _edit_page(post_id: int, status=200, headers=None, body=None, message=None, errors=None) -> Response:
    post = calls.fetch(f"{API}/posts/{post_id}")
    if (post.get("author") or {}).get("id") != caller().session.user_id:
        raise Problem(403)
    topic = calls.call("GET", f"{API}/topics/{post.get('topic_id')}", query={"limit": 1})
    if not topic.ok:
        raise calls.page_error(topic)
    history = calls.call("GET", f"{API}/posts/{post_id}/revisions")
    revisions = [
        item | {"written": date_time(item.get("written_at")), "replaced": date_time(item.get("replaced_at"))}
        for item in (history.body.get("items") or [] if history.ok else [])
    ]
    return page(
        "portal/forum_edit_post.html",
        status,
        headers,
        active="forum",
        post=_post(post),
        topic=topic.body,
        body=(post.get("body") or "") if body is None else body,
        revisions=sorted(revisions, key=lambda item: item.get("number") or 0, reverse=True),
        message=message,
        errors=errors or {},
    )


# --- search and subscriptions -------------------------------------------------------------
@portal.get("/forum/search")
@signed_in_page
def forum_search():
    query = request.args.get("q", "").strip()[:MAX_QUERY]
    hits, message = [], None
    if query:
        answer = calls.call("GET", f"{API}/search", query={"q": query})
        if answer.status == 422:
            message = _("Type a few words to search for.")
        elif not answer.ok:
            raise calls.page_error(answer)
        else:
            hits = answer.body.get("items") or []
    return page("portal/forum_search.html", active="forum", query=query, hits=hits, message=message)


@portal.get("/forum/subscriptions")
@signed_in_page
def forum_subscriptions():
    return _subscriptions_page(done=request.args.get("done"))


def _subscriptions_page(status=200, headers=None, message=None, done=None) -> Response:
    listing = calls.fetch(f"{API}/subscriptions")
    items = [item | {"since_text": date_time(item.get("since"))} for item in listing.get("items") or []]
    shown_page("portal.forum_subscriptions")
    return page(
        "portal/forum_subscriptions.html",
        status,
        headers,
        active="forum",
        topics=[item for item in items if item.get("kind") == "topic"],
        categories=[item for item in items if item.get("kind") == "category"],
        message=message,
        done=done,
    )


def _watch(kind: str, item_id: int) -> Response:
    """Start or stop watching a topic or a category, then back to the page the button was on
    (`back`: the forum's front page, my subscriptions, or else the item's own page)."""
    watching = request.form.get("watch") == "1"
    back = request.form.get("back")
    answer = calls.call("PUT" if watching else "DELETE", f"{API}/{kind}/{item_id}/watch")
    done = "watching" if watching else "unwatched"
    if back == "index":
        if answer.ok:
            return redirect(url_for("portal.forum_index", done=done), 303)
        return _index_page(answer.status, answer.headers, problem_message(answer))
    if back == "subscriptions":
        if answer.ok:
            return redirect(url_for("portal.forum_subscriptions", done=done), 303)
        return _subscriptions_page(answer.status, answer.headers, problem_message(answer))
    if kind == "categories":
        if answer.ok:
            return redirect(url_for("portal.forum_category", category_id=item_id, done=done), 303)
        return _category_page(item_id, answer.status, answer.headers, problem_message(answer))
    if answer.ok:
        return redirect(url_for("portal.forum_topic", topic_id=item_id, done=done), 303)
    return _topic_page(item_id, answer.status, answer.headers, problem_message(answer))


# --- the unsubscribe link in the e-mails (no sign-in needed) ------------------------------
@portal.get("/forum/unsubscribe")
def forum_unsubscribe_form():
    token = request.args.get("token", "")
    return _unsubscribe_page(token, "ask" if token else "unknown", 200 if token else 404)


@portal.post("/forum/unsubscribe")
@accepts_raw_body
def forum_unsubscribe():
    token = request.form.get("token", "")
    if not forms.valid(request):
        return _unsubscribe_page(token, "ask", EXPIRED_FORM, message=_expired_form()["message"])
    answer = calls.call("POST", f"{API}/unsubscribe", {"token": token})
    if answer.ok:
        return _unsubscribe_page(token, "done", ended=answer.body)
    if answer.status in (404, 422):
        return _unsubscribe_page(token, "unknown", 404)
    return _unsubscribe_page(token, "ask", answer.status, answer.headers, calls.problem_message(answer))


def _unsubscribe_page(token: str, state: str, status=200, headers=None, message=None, ended=None) -> Response:
    return form_page(
        "portal/forum_unsubscribe.html",
        "portal.forum_unsubscribe",
        status,
        headers,
        active="forum",
        token=token,
        state=state,
        message=message,
        ended=ended or {},
    )


# --- what the pages show ------------------------------------------------------------------
def is_staff() -> bool:
    signed_in = caller()
    return bool(signed_in and signed_in.session.staff)


def _category(item: dict) -> dict:
    return item | {"last_activity": date_time(item.get("last_activity_at"))}


def _topic_summary(item: dict) -> dict:
    return item | {
        "last_activity": date_time(item.get("last_activity_at")),
        "started": date_time(item.get("created_at")),
    }


def _post(item: dict) -> dict:
    return item | {"when": date_time(item.get("created_at")), "edited": date_time(item.get("edited_at"))}


def _post_url(topic_id: int, post_id: int, **arguments) -> str:
    """A post on its topic's page: `post` finds the page that holds it, the anchor scrolls there."""
    return url_for("portal.forum_topic", topic_id=topic_id, post=post_id, _anchor=f"post-{post_id}", **arguments)


def _int(value) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def failure(answer: calls.Answer) -> dict:
    """A form page's message and field errors for a failed answer of the forum."""
    return {
        "message": problem_message(answer),
        "errors": {
            name: field_message(name, str(error.get("message") or ""))
            for error in answer.body.get("errors") or []
            for name in [str(error.get("field") or "_body")]
        },
    }


def field_message(name: str, message: str) -> str:
    """The forum's field errors: mostly the general ones, and a minimum length said as one."""
    text = message.lower()
    if name == "title" and text.startswith("shorter than minimum length") and "length 1." not in text:
        return _("Write at least 3 characters.")
    return calls.field_message(name, message)


def problem_message(answer: calls.Answer) -> str:
    """The forum's problems in the page's language (the rest as every page says them)."""
    kind = answer.problem
    if kind == "topic-locked":
        return _("This topic has been closed: no more replies or changes are possible.")
    if kind == "not-your-post":
        return _("Only the author of a post can change it.")
    if kind == "not-your-topic":
        return _("Only the author of the topic can mark its solution.")
    if kind in ("not-in-topic", "not-a-reply"):
        return _("Only a visible reply in this topic can be its solution.")
    if kind == "category-exists":
        return _("A category with this name exists already.")
    if kind == "not-found":
        return _("We could not find what you asked for. Reload the page and try again.")
    if answer.status == 429:
        seconds = (answer.headers or {}).get("Retry-After", "")
        if seconds.strip().isdigit():
            return _("You are posting too fast. Try again in %(seconds)s s.", seconds=seconds.strip())
        return _("You are posting too fast. Wait a while before trying again.")
    if answer.status == 403:
        return _("You cannot do this here.")
    return calls.problem_message(answer)
