"""Documents for customers (manuals, price lists, forms): staff publish them with files;
members with the documents right list them with signed links."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from distribution import links
from distribution.downloads_api import (
    RAW_UPLOAD,
    LinkedFileSchema,
    StoredFileSchema,
    link_owner,
    member_check,
    store_upload,
)
from distribution.models import Document, ReleaseFile
from shared.auth import signed_in, staff_only
from shared.idempotency import idempotent
from shared.names import Name
from shared.problems import Problem
from shared.web import accepts_raw_body, database, list_of, settings

documents = Blueprint("documents", __name__, url_prefix="/api/v1", description="Documents")


class DocumentSchema(Schema):
    id = fields.Integer(dump_only=True)
    title = Name(required=True)
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    product = fields.String(load_default=None, validate=validate.Length(max=40))
    published_at = fields.DateTime(dump_only=True)


class DocumentWithFilesSchema(DocumentSchema):
    files = fields.List(fields.Nested(LinkedFileSchema))


DocumentListSchema = list_of(DocumentWithFilesSchema, "DocumentList")


class DocumentListPlainSchema(Schema):
    items = fields.List(fields.Nested(DocumentSchema))
    next = fields.String(allow_none=True)


@documents.route("/admin/documents")
class AdminDocuments(MethodView):
    @staff_only
    @documents.response(200, DocumentListPlainSchema)
    def get(self):
        with database().unit_of_work() as session:
            return {
                "items": session.scalars(select(Document).order_by(Document.published_at.desc())).all(),
                "next": None,
            }

    @idempotent
    @staff_only
    @documents.arguments(DocumentSchema)
    @documents.response(201, DocumentSchema)
    def post(self, body):
        with database().unit_of_work() as session:
            document = Document(**body)
            session.add(document)
            session.flush()
            return document


@documents.route("/admin/documents/<int:document_id>/files/<name>")
class DocumentFiles(MethodView):
    @accepts_raw_body
    @staff_only
    @documents.doc(requestBody=RAW_UPLOAD)
    @documents.response(201, StoredFileSchema)
    def put(self, document_id, name):
        with database().unit_of_work() as session:
            if session.get(Document, document_id) is None:
                raise Problem(404, "not-found", "Not found", "No such document.")
        return store_upload(name, document_id=document_id)


@documents.route("/customers/<customer_number>/documents")
class CustomerDocuments(MethodView):
    @signed_in
    @documents.response(200, DocumentListSchema)
    def get(self, customer_number):
        config = settings()
        with database().unit_of_work() as session:
            member_check(session, customer_number, "documents")
            docs = session.scalars(select(Document).order_by(Document.published_at.desc())).all()
            files: dict[int, list[ReleaseFile]] = {}
            for file in session.scalars(
                select(ReleaseFile).where(ReleaseFile.document_id.is_not(None)).order_by(ReleaseFile.name)
            ):
                files.setdefault(file.document_id, []).append(file)
            secret, owner = config.require_secret(), link_owner()
            return {
                "items": [
                    {
                        "id": d.id,
                        "title": d.title,
                        "description": d.description,
                        "product": d.product,
                        "published_at": d.published_at,
                        "files": [
                            {
                                "id": f.id,
                                "name": f.name,
                                "size": f.size,
                                "sha256": f.sha256,
                                "url": links.make(
                                    secret,
                                    config.public_url,
                                    f.id,
                                    f.name,
                                    customer_number,
                                    config.download_link_ttl,
                                    owner,
                                ),
                            }
                            for f in files.get(d.id, [])
                        ],
                    }
                    for d in docs
                ],
                "next": None,
            }
