"""``idp faces ...``: embed, enroll, verify, evaluate and re-key from the command line.

Exit codes: 0 success (verify: match), 1 error (bad input, unknown user,
enrollment refused; verify: a template the sign-in refuses now), 2 verify ran but did not match.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from idp.config import Config
from idp.face.reasons import REASON_MESSAGES, FaceInputError, TemplateTamperedError
from idp.face.template import TemplateCipher
from idp.store.runtime import open_database

from .integrity import refusal


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None


def engine_for(config):
    """The face engine, with TensorFlow imported as `idp serve` imports it: its load-time notices
    (oneDNN, absl) filtered out of stderr, every other line kept."""
    from idp.face.engine import engine_for as load
    from idp.native_notices import import_tensorflow_quietly

    import_tensorflow_quietly()
    return load(config)


def _analyze_files(engine, paths, embed="ok", version=None):
    """(path, FrameAnalysis | None, reason | None) for each file; bad inputs become reasons, not crashes.
    ``version``: the template version the frames are for; one that fuses dlib gets dlib's embedding of
    every good image too (as enrollment does for every good frame), one that flips the mirror's FaceNet
    embedding (the default: the current version's embedding)."""
    from idp.face import settings

    spec = settings.TEMPLATE_VERSIONS.get(version) if version else None
    dlib = "ok" if spec is not None and spec.dlib else "never"
    mirror = spec.flip if spec is not None else None
    out, frames, owners = [], [], []
    for path in paths:
        try:
            frames.append(engine.decode(_read(path)))
            owners.append(len(out))
            out.append([path, None, None])
        except FaceInputError as exc:
            out.append([path, None, exc.reason])
    for idx, analysis in zip(owners, engine.analyze_batch(frames, embed=embed, dlib=dlib, mirror=mirror)):
        out[idx][1] = analysis
        out[idx][2] = analysis.reasons[0] if analysis.reasons else None
    return out


def _find_user(db, username: str) -> dict:
    """The account ``username``; exit 1 when there is none, or a deletion has claimed it (its face data is being
    erased: a template stored now could outlive the account, as the web pages refuse it too)."""
    from idp.accounts.users import deletion_claimed
    user = db["users"].find_one({"username": username.strip().lower()})
    if user is None or deletion_claimed(user):
        click.echo(f"error: no user named {username!r}" + (" (it is being deleted)" if user else ""), err=True)
        sys.exit(1)
    return user


@click.group("faces")
def faces():
    """Face engine: embeddings, enrollment, verification, evaluation."""


@faces.command("embed")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def embed_cmd(images, as_json):
    """Print the 512-d embedding of the face in each IMAGE (null with a reason if rejected). Exit 0 only when
    every image gave one, 1 when any was refused (a script must not take a refused image for an embedded one)."""
    config = Config.load()
    engine = engine_for(config)
    refused = False
    for path, analysis, reason in _analyze_files(engine, images):
        emb = None if analysis is None or analysis.embedding is None else analysis.embedding
        if as_json:
            click.echo(json.dumps({"image": path, "embedding": None if emb is None else [round(float(x), 7) for x in emb],
                                   "reason": reason}))
        elif emb is not None:
            click.echo(f"{path}: ok, {len(emb)}-d embedding, first values "
                       + " ".join(f"{x:+.4f}" for x in emb[:4]))
        else:
            click.echo(f"{path}: {reason} - {REASON_MESSAGES.get(reason, '')}")
        refused = refused or emb is None
    if refused:
        sys.exit(1)


@faces.command("enroll")
@click.argument("username")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--min-frames", type=int, default=None, help="Good images required (default from settings).")
@click.option("--json", "as_json", is_flag=True)
def enroll_cmd(username, images, min_frames, as_json):
    """Enroll USERNAME's face from IMAGES (replaces any existing template). Audited (``face.enroll``, ``via`` "cli")
    and told to the owner by email, as every stored template is; uses up a pending admin reset and lifts a
    re-enrollment mark, as an enrollment on the pages does. An account (or face data) deleted while the command
    loaded the models and judged the images keeps no template: exit 1, as for an account being deleted."""
    from idp import audit
    from idp.face.repository import save_template, template_info

    from .erasure import erased_meanwhile, undo_enrollment

    config = Config.load()
    with open_database(config) as db:
        user = _find_user(db, username)
        engine = engine_for(config)
        results = _analyze_files(engine, images, version=engine.model_version)
        analyses = [a for _, a, _ in results if a is not None]
        res = engine.enroll(analyses, min_frames=min_frames) if analyses else None
        if res is not None and res.ok:
            from .reenrollment import after_enrollment, enroll_cooloff_mark
            replaced = template_info(db, user["_id"]) is not None
            mark = enroll_cooloff_mark(db, user["_id"])  # the only re-enrollment mark the command lifts
            saved = save_template(db, user["_id"], res.template, TemplateCipher.from_config(config))
            # the account was checked before the models loaded (seconds): a deletion since then has passed the
            # templates already, or claimed before this read (the command asks for no consent: the operator's)
            erased = erased_meanwhile(db, user["_id"], saved, consent=False)
            if erased is None:
                # as an enrollment on the pages: a pending admin reset is used up and a re-enrollment mark lifted
                # (a running cooling-off period stays: the operator's template starts none, and shortens none);
                # then read again: a deletion since the read above may have passed the status before this write
                after_enrollment(db, user["_id"], config.face_recovery_cooloff_s, None, mark)
                erased = erased_meanwhile(db, user["_id"], saved, consent=False)
            if erased is not None:
                undo_enrollment(db, user["_id"], erased, saved, mark)
                what = "the account" if erased == "account" else "its face data"
                click.echo(f"error: {user['username']!r} was not enrolled: {what} was deleted (or is being "
                           "deleted) while the images were judged", err=True)
                sys.exit(1)
            audit.record(db, audit.FACE_ENROLL, user_id=user["_id"], decision="enrolled",
                         details={"via": "cli", "replaced": replaced, "used_frames": res.used_frames})
            from idp.accounts.users import erased_if_claimed_since
            if erased_if_claimed_since(db, user["_id"]):  # an account deletion overtook the writes above: all go
                click.echo(f"error: {user['username']!r} was not enrolled: the account was deleted (or is being "
                           "deleted) while the images were judged", err=True)
                sys.exit(1)
        ok = res is not None and res.ok
        reasons = res.reasons if res is not None else ["no_usable_frames"]
        payload = {"username": user["username"], "enrolled": ok, "reasons": reasons,
                   "used_frames": res.used_frames if res else 0, "stats": res.stats if res else {},
                   "images": [{"image": p, "reason": r} for p, _, r in results]}
        if as_json:
            click.echo(json.dumps(payload))
        elif ok:
            click.echo(f"enrolled {user['username']} from {res.used_frames} of {len(images)} images")
        else:
            click.echo(f"enrollment refused: {', '.join(reasons)}", err=True)
            for p, _, r in results:
                if r:
                    click.echo(f"  {p}: {r} - {REASON_MESSAGES.get(r, '')}", err=True)
    sys.exit(0 if ok else 1)


@faces.command("verify")
@click.argument("username")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--threshold", type=float, default=None, help="Override the decision threshold.")
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(username, images, threshold, as_json):
    """Verify IMAGES against USERNAME's template. Exit 0 on match, 2 on no match, 1 on error."""
    from idp.face.repository import load_template

    config = Config.load()
    with open_database(config) as db:
        user = _find_user(db, username)
        try:
            template = load_template(db, user["_id"], TemplateCipher.from_config(config))
        except TemplateTamperedError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        if template is None:
            click.echo(f"error: {user['username']} has no face template; enroll first", err=True)
            sys.exit(1)
        refused = refusal(db, user["_id"], TemplateCipher.from_config(config))
        if refused is not None:
            click.echo(f"error: the sign-in refuses {user['username']}'s face template now ({refused[0]}"
                       + (f" until {refused[1]:%Y-%m-%d %H:%M} UTC" if refused[1] else "") + "); nothing was compared",
                       err=True)
            sys.exit(1)
    engine = engine_for(config)
    results = _analyze_files(engine, images, version=engine.template_version(template))
    analyses = [a for _, a, _ in results if a is not None]
    res = engine.verify(template, analyses, threshold=threshold)
    payload = {"username": user["username"], "score": round(res.score, 6),
               "decision": "match" if res.match else "no_match", "match": res.match,
               "threshold": res.threshold, "reasons": res.reasons, "frames_used": res.frames_used}
    if as_json:
        click.echo(json.dumps(payload))
    else:
        click.echo(f"{payload['decision']}: score {res.score:.4f} (threshold {res.threshold:.4f}), "
                   f"{res.frames_used} frame(s) used" + (f"; reasons: {', '.join(res.reasons)}" if res.reasons else ""))
    sys.exit(0 if res.match else 2)


@faces.command("mark-reenroll")
@click.option("--model-id", default=None, help="Mark the templates of this model id (default: every template "
                                               "not made by the configured model).")
@click.option("--all", "every", is_flag=True, help="Mark every template.")
def mark_reenroll_cmd(model_id, every):
    """Mark face templates for re-enrollment (e.g. after a model change).

    A marked template is kept but no longer used: the user's face step fails closed with a clear page,
    and a recovery code or an administrator's reset leads to a new enrollment (with its cooling-off
    period). Never a password-only path."""
    from idp import audit
    from .integrity import mark_for_reenrollment
    if model_id and every:
        raise click.UsageError("give --model-id ID or --all, not both")
    config = Config.load()
    with open_database(config) as db:
        marked = mark_for_reenrollment(db, model_id=model_id, every=every)
        for uid in marked:
            audit.record(db, audit.FACE_REENROLL_MARKED, user_id=uid, decision="marked",
                         details={"model_id": model_id, "all": every})
    click.echo(f"marked {len(marked)} template(s) for re-enrollment")


@faces.command("versions")
def versions_cmd():
    """Count the stored face templates per template version (metadata only, nothing decrypted). Templates
    of an older version keep working; their owners are invited to enroll again on their face page."""
    from idp.face import settings
    from idp.face.repository import is_older_version, version_counts

    with open_database(Config.load()) as db:
        counts = version_counts(db)
    for version in sorted(set(counts) | {settings.MODEL_VERSION}):
        note = "current" if version == settings.MODEL_VERSION else (
            "older: still scored as enrolled; enroll again to move" if is_older_version({"model_version": version})
            else "unknown to this engine: the face step asks for a new enrollment")
        click.echo(f"version {version}: {counts.get(version, 0)} template(s) ({note})")


@faces.command("rekey")
@click.option("--dry-run", is_flag=True, help="Count what would be re-sealed; change nothing.")
def rekey_cmd(dry_run):
    """Re-seal every face template (and the embeddings of unfinished captures) under IDP_TEMPLATE_KEY.

    Reads with IDP_TEMPLATE_KEYS_RETIRED; each record is replaced only if it is still the one read (a
    re-enrollment meanwhile is kept), so it is safe while the server runs and can be run again to finish.
    Prints counts per key id (never template contents). Exit 1 when some record stays unreadable."""
    from idp import audit, keyring
    from .capture_sessions import Captures
    from .recovery import codes_under_other_keys
    from idp.face.repository import rekey_templates

    config = Config.load()
    cipher = TemplateCipher.from_config(config)
    with open_database(config) as db:
        templates = rekey_templates(db, cipher, dry_run=dry_run)
        frames = Captures(db, cipher, config.capture_ttl_s).rekey(dry_run=dry_run)
        old_codes = codes_under_other_keys(db, config.secret_key)
        if not dry_run:
            details = keyring.audit_details(templates, cipher.key_id)
            details["capture_frames_rekeyed"] = keyring.totals(frames)["rekeyed"]
            details["recovery_codes_other_secret_key"] = old_codes
            audit.record(db, audit.FACE_TEMPLATES_REKEYED, decision="rekeyed", details=details)
    lines = keyring.report_lines("face template(s)", templates, cipher.key_id, dry_run)
    lines += keyring.report_lines("capture embedding(s)", frames, cipher.key_id, dry_run)[1:]
    if old_codes:  # HMACs: nothing to re-seal, but dropping their secret key would void them
        lines.append(f"note: {old_codes} unused recovery code(s) were issued under an earlier IDP_SECRET_KEY "
                     "(or before codes recorded their key); they work only while that key is in "
                     "IDP_SECRET_KEYS_RETIRED")
    click.echo("\n".join(lines))
    left = keyring.totals(keyring.merge(templates, frames))
    sys.exit(1 if left["unreadable"] + left["unknown_key"] else 0)


@faces.command("eval")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--pairs", "pairs_txt", type=click.Path(exists=True, dir_okay=False),
              help="LFW pairs.txt: score these pairs and report 10-fold accuracy.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write DET curve and histograms (PNG).")
@click.option("--enroll-count", type=int, default=5, show_default=True, help="Images per enrollment template.")
@click.option("--max-identities", type=int, default=None, help="Use only the first N identity folders.")
def eval_cmd(dataset_dir, pairs_txt, as_json, plot_path, enroll_count, max_identities):
    """Genuine/impostor scores, EER and FNMR at fixed FMRs for DATASET_DIR (folders of identities)."""
    from idp.face import evaluation

    config = Config.load()
    engine = engine_for(config)
    report = evaluation.run(engine, Path(dataset_dir), pairs_txt=Path(pairs_txt) if pairs_txt else None,
                            enroll_count=enroll_count, max_identities=max_identities, plot_path=plot_path)
    if as_json:
        click.echo(json.dumps(report, indent=None))
    else:
        click.echo(evaluation.format_report(report))


if __name__ == "__main__":  # python -m idp.faceweb.cli ...
    faces()
