"""Distribution's API for releases and files: staff create, upload and publish; customers
list what they may download and fetch it by signed link; the desktop program asks for updates.
"""

from __future__ import annotations

import mimetypes
import os

from flask import Response, current_app, request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.wsgi import wrap_file

from distribution import links, releases
from distribution.models import (
    CHANNELS,
    RELEASE_KINDS,
    Customer,
    DownloadRecord,
    Entitlement,
    Release,
    ReleaseFile,
    Shipment,
)
from distribution.storage import DirectoryStorage, Storage, TooLarge
from shared import memberships, spreadsheet, throttle
from shared.auth import client_address, current_principal, signed_in, signed_in_user, staff_only
from shared.config import var_dir
from shared.db import utc_now
from shared.idempotency import idempotent
from shared.problems import Problem
from shared.web import accepts_raw_body, database, list_of, settings

admin = Blueprint(
    "admin-releases", __name__, url_prefix="/api/v1/admin", description="Vendor staff: releases, shipments"
)
customer_api = Blueprint(
    "customer-downloads", __name__, url_prefix="/api/v1/customers", description="A customer's downloads"
)
public = Blueprint("files", __name__, url_prefix="/api/v1", description="Signed files and the update check")

# Largest file staff may upload (bytes); installers of several GB are normal.
UPLOAD_LIMIT = int(os.environ.get("UPLOAD_LIMIT") or 20 * 1024**3)
UPDATE_CHECKS_PER_CLIENT = throttle.limit_from_env("UPDATE_CHECK_CLIENT_LIMIT", "120/3600")
# What the OpenAPI document says of bodies that are not JSON.
RAW_UPLOAD = {
    "required": True,
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
FILE_CONTENT = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}


def storage() -> Storage:
    if "storage" not in current_app.extensions:
        root = os.environ.get("DISTRIBUTION_STORAGE_DIR") or str(var_dir() / "files")
        current_app.extensions["storage"] = DirectoryStorage(root)
    return current_app.extensions["storage"]


# --- schemas ------------------------------------------------------------------------------
class ReleaseSchema(Schema):
    id = fields.Integer(dump_only=True)
    product = fields.String(required=True, validate=validate.Length(min=1, max=40))
    version = fields.String(required=True, validate=validate.Regexp(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,39}$"))
    kind = fields.String(required=True, validate=validate.OneOf(RELEASE_KINDS))
    channel = fields.String(load_default="stable", validate=validate.OneOf(CHANNELS))
    released_on = fields.Date(required=True)
    notes = fields.String(load_default="", validate=validate.Length(max=20000))
    applies_to = fields.List(
        fields.String(validate=validate.Length(max=40)), load_default=list, validate=validate.Length(max=100)
    )
    published_at = fields.DateTime(dump_only=True, allow_none=True)


ReleaseListSchema = list_of(ReleaseSchema, "ReleaseList")


class StoredFileSchema(Schema):
    file_id = fields.Integer(attribute="id")
    name = fields.String()
    size = fields.Integer()
    sha256 = fields.String()


class PublishedSchema(Schema):
    id = fields.Integer()
    published = fields.Boolean()
    published_at = fields.DateTime()


class LinkedFileSchema(StoredFileSchema):
    url = fields.String()


class DownloadSchema(Schema):
    release_id = fields.Integer()
    product = fields.String()
    version = fields.String()
    kind = fields.String()
    channel = fields.String()
    released_on = fields.Date()
    notes = fields.String()
    files = fields.List(fields.Nested(LinkedFileSchema))


DownloadListSchema = list_of(DownloadSchema, "DownloadList")


class HistorySchema(Schema):
    file_id = fields.Integer()
    name = fields.String()
    product = fields.String(allow_none=True)
    version = fields.String(allow_none=True)
    at = fields.DateTime()
    user_id = fields.String(allow_none=True)
    installation_number = fields.String(allow_none=True)


HistoryListSchema = list_of(HistorySchema, "HistoryList")


class UpdateQuerySchema(Schema):
    installation_number = fields.String(required=True, validate=validate.Length(min=1, max=60))
    version = fields.String(required=True, validate=validate.Length(min=1, max=40))
    channel = fields.String(load_default="stable", validate=validate.OneOf(CHANNELS))


class UpdateAnswerSchema(Schema):
    update_available = fields.Boolean()
    release = fields.Nested(DownloadSchema, allow_none=True)


class ShipmentSchema(Schema):
    id = fields.Integer()
    customer_number = fields.String()
    company_name = fields.String()
    release_id = fields.Integer()
    version = fields.String()
    product = fields.String()
    delivery_address = fields.Dict(allow_none=True)
    status = fields.String()
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


ShipmentListSchema = list_of(ShipmentSchema, "ShipmentList")


class ShipmentQuerySchema(Schema):
    status = fields.String(load_default="pending", validate=validate.OneOf(["pending", "sent", "all"]))


# --- helpers ------------------------------------------------------------------------------
def _customer_exists(session, customer_number: str) -> bool:
    return session.get(Customer, customer_number) is not None


def member_check(session, customer_number: str, right: str) -> None:
    memberships.require(session, signed_in_user(), customer_number, right, customer_exists=_customer_exists)


def link_owner() -> str | None:
    """Whom a download link handed out now names: the signed-in person, so it stops working when
    their right does (links.py); staff's read-only look at a customer is not bound to a person."""
    principal = current_principal()
    return principal.user_id if principal is not None and not principal.staff else None


def release_view(release: Release, files: list[ReleaseFile], customer_number: str, user_id: str | None = None) -> dict:
    config = settings()
    return {
        "release_id": release.id,
        "product": release.product,
        "version": release.version,
        "kind": release.kind,
        "channel": release.channel,
        "released_on": release.released_on,
        "notes": release.notes,
        "files": [
            {
                "id": f.id,
                "name": f.name,
                "size": f.size,
                "sha256": f.sha256,
                "url": links.make(
                    config.require_secret(),
                    config.public_url,
                    f.id,
                    f.name,
                    customer_number,
                    config.download_link_ttl,
                    user_id,
                ),
            }
            for f in files
        ],
    }


def _release(session, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise Problem(404, "not-found", "Not found", "No such release.")
    return release


# --- staff --------------------------------------------------------------------------------
@admin.route("/releases")
class Releases(MethodView):
    @staff_only
    @admin.response(200, ReleaseListSchema)
    def get(self):
        with database().unit_of_work() as session:
            return {
                "items": session.scalars(select(Release).order_by(Release.released_on.desc(), Release.id.desc())).all(),
                "next": None,
            }

    @idempotent
    @staff_only
    @admin.arguments(ReleaseSchema)
    @admin.response(201, ReleaseSchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                release = Release(**body)
                session.add(release)
                session.flush()
                return release
        except IntegrityError:
            raise Problem(
                409, "release-exists", "Release exists", "This product already has that version, kind and channel."
            ) from None


@admin.route("/releases/<int:release_id>/files/<name>")
class ReleaseFiles(MethodView):
    @accepts_raw_body
    @staff_only
    @admin.doc(requestBody=RAW_UPLOAD)
    @admin.response(201, StoredFileSchema)
    def put(self, release_id, name):
        """Upload a file (the raw bytes): streamed to storage while its SHA-256 is computed."""
        with database().unit_of_work() as session:
            release = _release(session, release_id)
            if release.published_at is not None:
                raise Problem(
                    409, "release-published", "Release published", "A published release's files cannot change."
                )
        return store_upload(name, release_id=release_id)


def store_upload(name: str, **owner) -> ReleaseFile:
    """Stream the request body into storage and record the file for its release or document."""
    # The name is only ever a label (storage keys are random), but it goes into the download's
    # Content-Disposition: a control character (a newline, NUL) would break that answer.
    if (
        not (0 < len(name) <= 200)
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name)
    ):
        message = "A file name without slashes or control characters, at most 200 characters."
        raise Problem(
            422, "validation-failed", "Validation failed", message, errors=[{"field": "name", "message": message}]
        )
    request.max_content_length = UPLOAD_LIMIT
    try:
        stored = storage().put(request.stream, UPLOAD_LIMIT)
    except TooLarge:
        raise Problem(
            413, "payload-too-large", "File too large", f"Files may have at most {UPLOAD_LIMIT} bytes."
        ) from None
    try:
        with database().unit_of_work() as session:
            file = ReleaseFile(name=name, size=stored.size, sha256=stored.sha256, storage_key=stored.key, **owner)
            session.add(file)
            session.flush()
            return file
    except BaseException:
        storage().delete(stored.key)
        raise


@admin.route("/releases/<int:release_id>/publish")
class PublishRelease(MethodView):
    @staff_only
    @admin.response(200, PublishedSchema)
    def post(self, release_id):
        """Publish: customers see it; a full release ships DVDs and becomes news. Again: no change."""
        with database().unit_of_work() as session:
            release = session.get(Release, release_id, with_for_update=True)
            if release is None:
                raise Problem(404, "not-found", "Not found", "No such release.")
            if not session.scalar(select(ReleaseFile.id).where(ReleaseFile.release_id == release_id).limit(1)):
                raise Problem(
                    409, "release-without-files", "No files", "Upload the release's files before publishing it."
                )
            changed = releases.publish(session, release)
            return {"id": release.id, "published": changed, "published_at": release.published_at}


def _shipment_rows(session, status: str):
    query = (
        select(Shipment, Release.product, Release.version)
        .join(Release, Release.id == Shipment.release_id)
        .order_by(Shipment.id)
    )
    if status != "all":
        query = query.where(Shipment.status == status)
    return [
        {
            **{
                c: getattr(s, c)
                for c in (
                    "id",
                    "customer_number",
                    "company_name",
                    "release_id",
                    "delivery_address",
                    "status",
                    "created_at",
                    "sent_at",
                )
            },
            "product": product,
            "version": version,
        }
        for s, product, version in session.execute(query)
    ]


class DownloadCountSchema(Schema):
    file_id = fields.Integer()
    name = fields.String()
    product = fields.String(allow_none=True)
    version = fields.String(allow_none=True)
    downloads = fields.Integer()
    customers = fields.Integer()


DownloadCountListSchema = list_of(DownloadCountSchema, "DownloadCountList")


@admin.route("/download-counts")
class DownloadCounts(MethodView):
    @staff_only
    @admin.response(200, DownloadCountListSchema)
    def get(self):
        """The vendor's counts: downloads started and distinct customers, per file."""
        with database().unit_of_work() as session:
            rows = session.execute(
                select(
                    ReleaseFile.id,
                    ReleaseFile.name,
                    Release.product,
                    Release.version,
                    func.count(DownloadRecord.id),
                    func.count(DownloadRecord.customer_number.distinct()),
                )
                .join(DownloadRecord, DownloadRecord.file_id == ReleaseFile.id)
                .outerjoin(Release, Release.id == ReleaseFile.release_id)
                .group_by(ReleaseFile.id, ReleaseFile.name, Release.product, Release.version)
                .order_by(func.count(DownloadRecord.id).desc())
            ).all()
            keys = ("file_id", "name", "product", "version", "downloads", "customers")
            return {"items": [dict(zip(keys, row, strict=True)) for row in rows], "next": None}


@admin.route("/shipments")
class Shipments(MethodView):
    @staff_only
    @admin.arguments(ShipmentQuerySchema, location="query")
    @admin.response(200, ShipmentListSchema)
    def get(self, query):
        with database().unit_of_work() as session:
            return {"items": _shipment_rows(session, query["status"]), "next": None}


@admin.route("/shipments.csv")
class ShipmentsCsv(MethodView):
    @staff_only
    @admin.arguments(ShipmentQuerySchema, location="query")
    @admin.doc(responses={200: {"description": "The shipments as CSV", "content": CSV_CONTENT}})
    def get(self, query):
        """The shipping list for the post office."""
        with database().unit_of_work() as session:
            rows = _shipment_rows(session, query["status"])
        header = (
            "id",
            "customer_number",
            "company_name",
            "street",
            "city",
            "postal_code",
            "country",
            "product",
            "version",
            "status",
        )
        lines = []
        for row in rows:
            address = row["delivery_address"] or {}
            lines.append(
                [
                    row["id"],
                    row["customer_number"],
                    row["company_name"],
                    address.get("street", ""),
                    address.get("city", ""),
                    address.get("postal_code", ""),
                    address.get("country", ""),
                    row["product"],
                    row["version"],
                    row["status"],
                ]
            )
        return Response(
            spreadsheet.document(header, lines),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="shipments.csv"'},
        )


@admin.route("/shipments/<int:shipment_id>/sent")
class ShipmentSent(MethodView):
    @staff_only
    @admin.response(200, ShipmentSchema)
    def post(self, shipment_id):
        with database().unit_of_work() as session:
            shipment = session.get(Shipment, shipment_id, with_for_update=True)
            if shipment is None:
                raise Problem(404, "not-found", "Not found", "No such shipment.")
            if shipment.status != "sent":
                shipment.status, shipment.sent_at = "sent", utc_now()
            release = session.get(Release, shipment.release_id)
            return {
                **{c: getattr(shipment, c) for c in ShipmentSchema._declared_fields if hasattr(shipment, c)},
                "product": release.product,
                "version": release.version,
            }


# --- customers ----------------------------------------------------------------------------
@customer_api.route("/<customer_number>/downloads")
class Downloads(MethodView):
    @signed_in
    @customer_api.response(200, DownloadListSchema)
    def get(self, customer_number):
        with database().unit_of_work() as session:
            member_check(session, customer_number, "downloads")
            entitled = releases.entitled_releases(session, customer_number)
            files = releases.files_of(session, [r.id for r in entitled])
            owner = link_owner()
            return {
                "items": [release_view(r, files.get(r.id, []), customer_number, owner) for r in entitled],
                "next": None,
            }


@customer_api.route("/<customer_number>/download-history")
class DownloadHistory(MethodView):
    @signed_in
    @customer_api.response(200, HistoryListSchema)
    def get(self, customer_number):
        with database().unit_of_work() as session:
            member_check(session, customer_number, "downloads")
            rows = session.execute(
                select(DownloadRecord, ReleaseFile.name, Release.product, Release.version)
                .join(ReleaseFile, ReleaseFile.id == DownloadRecord.file_id)
                .outerjoin(Release, Release.id == ReleaseFile.release_id)
                .where(DownloadRecord.customer_number == customer_number)
                .order_by(DownloadRecord.at.desc())
                .limit(200)
            ).all()
            return {
                "items": [
                    {
                        "file_id": r.file_id,
                        "name": name,
                        "product": product,
                        "version": version,
                        "at": r.at,
                        "user_id": r.user_id,
                        "installation_number": r.installation_number,
                    }
                    for r, name, product, version in rows
                ],
                "next": None,
            }


# --- signed files and the update check ----------------------------------------------------
@public.route("/files/<int:file_id>/<name>")
class SignedFile(MethodView):
    @public.doc(
        parameters=[
            {"in": "query", "name": name, "required": True, "schema": {"type": "string"}}
            for name in ("customer", "expires", "signature")
        ],
        responses={
            200: {"description": "The file", "content": FILE_CONTENT},
            206: {"description": "The requested range of the file", "content": FILE_CONTENT},
        },
    )
    def get(self, file_id, name):
        """A file by signed link: Content-Length, a strong ETag, Range (206/416), If-Range."""
        args = request.args
        try:
            links.verify(
                settings().require_secret(),
                file_id,
                args.get("customer", ""),
                args.get("expires", ""),
                args.get("signature", ""),
                args.get("user"),
            )
        except links.Tampered:
            raise Problem(403, "bad-signature", "Invalid link", "This download link is not valid.") from None
        except links.Expired:
            raise Problem(
                410,
                "link-expired",
                "Link expired",
                "This download link has expired; get a new one from the downloads page.",
            ) from None
        customer_number, user_id = args["customer"], args.get("user")
        with database().unit_of_work() as session:
            file = session.get(ReleaseFile, file_id)
            if file is None or file.name != name or not releases.may_download(session, customer_number, file):
                raise Problem(404, "not-found", "Not found", "No such file.")
            right = "documents" if file.document_id is not None else "downloads"
            if user_id is not None and not memberships.holds(session, user_id, customer_number, right):
                raise Problem(
                    403,
                    "right-withdrawn",
                    "Link no longer valid",
                    "The person this link was given to may no longer download this file.",
                )
            # Only what the signature vouches for is recorded: the file, the customer, the person.
            session.add(
                DownloadRecord(
                    file_id=file.id,
                    customer_number=customer_number,
                    user_id=user_id,
                    ranged="Range" in request.headers,
                )
            )
        return serve(file)

    head = get


def serve(file: ReleaseFile) -> Response:
    """The bytes, without copying them through Python: an edge server (X-Accel-Redirect,
    compose) or the WSGI server's sendfile (`wsgi.file_wrapper`) moves them."""
    accel = os.environ.get("DOWNLOAD_ACCEL_REDIRECT")
    if accel:
        # The edge server sends the file with the type we name here, and answers Range itself.
        response = Response(status=200, mimetype=mimetypes.guess_type(file.name)[0] or "application/octet-stream")
        response.headers["X-Accel-Redirect"] = f"{accel.rstrip('/')}/{file.storage_key[:2]}/{file.storage_key}"
        response.headers["ETag"] = f'"{file.sha256}"'
        response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{_quoted(file.name)}"
        return response
    path = storage().local_path(file.storage_key)
    response = send_file(
        path, as_attachment=True, download_name=file.name, etag=file.sha256, conditional=True, max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    if response.status_code == 206:
        # werkzeug serves a range by reading and dropping everything before it in Python;
        # a file object positioned at the start lets the server sendfile() just the range.
        window = _Window(path, response.content_range.start, response.content_range.stop)
        response.response.close()
        response.response = wrap_file(request.environ, window)
        response.direct_passthrough = True
    return response


class _Window:
    """Bytes [start, stop) of a file. A server that can sendfile() takes the descriptor at
    its position and sends Content-Length bytes; any other server reads it and gets no more
    than the window."""

    def __init__(self, path, start: int, stop: int):
        self.handle = open(path, "rb")  # noqa: SIM115 - closed by the WSGI server via close()
        self.handle.seek(start)
        self.left = stop - start

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        data = self.handle.read(self.left if size is None or size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def fileno(self) -> int:
        return self.handle.fileno()

    def close(self) -> None:
        self.handle.close()


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


@public.route("/updates")
class Updates(MethodView):
    @public.arguments(UpdateQuerySchema, location="query")
    @public.response(200, UpdateAnswerSchema)
    def get(self, query):
        """The desktop program asks whether a newer release it is entitled to exists."""
        key = f"update-check-client:{client_address()}"
        with database().unit_of_work() as session:
            throttle.refuse_if_throttled(session, [(key, UPDATE_CHECKS_PER_CLIENT)])
            throttle.hit(session, key, UPDATE_CHECKS_PER_CLIENT)
        number = _normalised(query["installation_number"])
        with database().unit_of_work() as session:
            entitlement = session.get(Entitlement, number) if number else None
            if entitlement is None:
                raise Problem(404, "not-found", "Unknown installation", "No such installation number.")
            release = releases.newest_update_for(session, entitlement, query["version"], query["channel"])
            if release is None:
                return {"update_available": False, "release": None}
            files = releases.files_of(session, [release.id]).get(release.id, [])
            return {"update_available": True, "release": release_view(release, files, entitlement.customer_number)}


def _normalised(typed: str) -> str | None:
    chars = "".join(typed.split()).replace("-", "").upper()
    return "-".join(chars[i : i + 6] for i in range(0, len(chars), 6)) if len(chars) == 18 else None
