"""Administration of relying-party clients under /admin/clients (administrators whose session proved the
face, see ``admin_required``). Disabling a client, rotating its secret and deleting it ask for confirmation first."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from idp import get_config, get_db
from idp.signin.guards import admin_required, signed_in_uid
from idp.web import confirm_page, confirmed

from idp import audit
from . import clients as svc
from .scopes import SUPPORTED_SCOPES

bp = Blueprint("oauth_admin", __name__, url_prefix="/admin/clients")


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").replace(",", "\n").splitlines() if line.strip()]


def _who() -> dict:
    """The admin and their request, for the audit entries the clients service writes."""
    return {"actor": signed_in_uid(), **audit.request_context()}


def _form_fields(form) -> dict:
    return {
        "name": form.get("name", ""),
        "redirect_uris": _lines(form.get("redirect_uris", "")),
        "post_logout_redirect_uris": _lines(form.get("post_logout_redirect_uris", "")),
        "scope": " ".join(form.getlist("scope")) or form.get("scope_text", "openid"),
        "face_policy": form.get("face_policy", "required"),
        "skip_consent": form.get("skip_consent") == "on",
        "logo_uri": form.get("logo_uri", ""),
        "policy_uri": form.get("policy_uri", ""),
        "tos_uri": form.get("tos_uri", ""),
        "backchannel_logout_uri": form.get("backchannel_logout_uri", ""),
        "backchannel_logout_session_required": form.get("backchannel_logout_session_required") == "on",
        "default_max_age": form.get("default_max_age", ""),
    }


@bp.get("/")
@admin_required
def index():
    return render_template("oauth/admin_list.html", clients=svc.list_clients(get_db()))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new():
    if request.method == "POST":
        fields = _form_fields(request.form)
        try:
            doc, secret = svc.create_client(get_db(), get_config(), public=request.form.get("public") == "on",
                                            created_via="admin", **_who(), **fields)
        except svc.ClientError as e:
            flash(str(e), "error")
            return render_template("oauth/admin_edit.html", client=None, form=request.form,
                                   scopes=SUPPORTED_SCOPES), 400
        return render_template("oauth/admin_secret.html", client=doc, secret=secret)
    return render_template("oauth/admin_edit.html", client=None, form={}, scopes=SUPPORTED_SCOPES)


@bp.route("/<client_id>", methods=["GET", "POST"])
@admin_required
def edit(client_id):
    db = get_db()
    doc = svc.get_client(db, client_id) or abort(404)
    if request.method == "POST":
        fields = _form_fields(request.form)
        fields["enabled"] = request.form.get("enabled") == "on"
        try:
            svc.update_client(db, client_id, config=get_config(), **_who(), **fields)
        except svc.ClientError as e:
            flash(str(e), "error")
            return render_template("oauth/admin_edit.html", client=doc, form=request.form,
                                   max_age=svc.editable_max_age(doc), scopes=SUPPORTED_SCOPES), 400
        if not fields["enabled"] and doc.get("enabled", True):
            svc.disable_client(db, client_id, **_who())
        flash("Client saved.", "success")
        return redirect(url_for(".edit", client_id=client_id))
    return render_template("oauth/admin_edit.html", client=doc, form=None, max_age=svc.editable_max_age(doc),
                           scopes=SUPPORTED_SCOPES)


@bp.post("/<client_id>/disable")
@admin_required
def disable(client_id):
    """After a confirmation, as disabling an account asks one: every token and code the client holds ends for
    good (enabling it again revives none)."""
    db = get_db()
    doc = svc.get_client(db, client_id) or abort(404)
    if not confirmed():
        return confirm_page(form_id="confirm-disable", title="Disable this client?",
                            message=f"{doc.get('name') or client_id} signs no one in until it is enabled again; "
                                    "every token and code it holds is revoked now, and enabling it again revives "
                                    "none of them.", button="Disable client", cancel_url=url_for(".index"))
    svc.disable_client(db, client_id, **_who()) or abort(404)
    flash("Client disabled; its tokens were revoked.", "success")
    return redirect(url_for(".index"))


@bp.post("/<client_id>/enable")
@admin_required
def enable(client_id):
    svc.enable_client(get_db(), client_id, **_who()) or abort(404)
    flash("Client enabled.", "success")
    return redirect(url_for(".index"))


@bp.post("/<client_id>/rotate-secret")
@admin_required
def rotate_secret(client_id):
    db = get_db()
    doc = svc.get_client(db, client_id) or abort(404)
    if not confirmed():
        return confirm_page(form_id="confirm-rotate", title="Rotate the client secret?",
                            message=f"The current secret of {doc.get('name') or client_id} stops working at once; "
                                    "the new one is shown once.", button="Rotate secret",
                            cancel_url=url_for(".edit", client_id=client_id))
    try:
        secret = svc.rotate_secret(db, get_config(), client_id, **_who())
    except svc.ClientError as e:
        flash(str(e), "error")
        return redirect(url_for(".edit", client_id=client_id))
    return render_template("oauth/admin_secret.html", client=doc, secret=secret)


@bp.post("/<client_id>/delete")
@admin_required
def delete(client_id):
    db = get_db()
    doc = svc.get_client(db, client_id) or abort(404)
    if not confirmed():
        return confirm_page(form_id="confirm-delete", title="Delete this client?",
                            message=f"{doc.get('name') or client_id} is deleted with its tokens and consents; "
                                    "this cannot be undone.", button="Delete client",
                            cancel_url=url_for(".edit", client_id=client_id))
    svc.delete_client(db, client_id, **_who()) or abort(404)
    flash("Client deleted.", "success")
    return redirect(url_for(".index"))
