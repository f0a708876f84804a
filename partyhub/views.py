from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie

from core import inbound, limits
from core.api import api, json_body, public_url
from core.errors import ApiError, engine_refusals
from generation import scoring
from generation.params import MAX_PROMPT_CHARS, check_weights_param, most_best_of
from generation.presets import all_presets, default_preset
from generation.tokens import token_count, token_limit
from generation.weights import parse as parse_weights
from partyhub import export, qr, tree
from partyhub.models import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH, Message, Party
from partyhub.models.talk import CHAT_PAGE, MAX_CHAT_PAGE
from partyhub.score_words import score_levels
from partyhub.sessions import membership_key
from partyhub.snapshot import snapshot
from partyhub.timeline import timeline
from partyhub.uploads import accept_upload, fit_field, upload_dict

MAX_EVENTS_PAGE = 1000


def clean_name(value):
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 99:
        raise ApiError("invalid_name", "name must be 1 to 99 characters.")
    return value.strip()


def clean_text(body, field, max_length, required):
    value = body.get(field, "")
    if not isinstance(value, str):
        raise ApiError(f"invalid_{field}", f"{field} must be a string.")
    value = value.strip()
    if (required and not value) or len(value) > max_length:
        raise ApiError(f"invalid_{field}", f"{field} must be 1 to {max_length} characters.")
    return value


def member_of(party, request):
    """The member this browser session is in `party`, or None (also for one removed from it)."""
    return party.member_for_session(request.session.session_key)


def get_party_for_member(request, code):
    """The party and the requester's member; outsiders may read public parties only."""
    party = get_object_or_404(Party.objects.by_code(code))
    member = member_of(party, request)
    if member is None and not party.public:
        raise ApiError("not_a_member", "Join the party first.", 403)
    return party, member


# --- API -------------------------------------------------------------------------------------


@api("POST")
def create_party(request):
    body = json_body(request)
    topic = clean_text(body, "topic", 200, required=True)
    title = clean_text(body, "title", 200, required=False)
    public = body.get("public", False)
    if not isinstance(public, bool):
        raise ApiError("invalid_public", "public must be true or false.")
    steered = body.get("steered", False)
    if not isinstance(steered, bool):
        raise ApiError("invalid_steered", "steered must be true or false.")
    name = clean_name(body["name"]) if "name" in body else "Prompt Master"
    limits.check_new_party(request)  # a refused request costs no quota
    party, host = Party.start(
        topic=topic,
        title=title,
        public=public,
        steered=steered,
        session_key=membership_key(request),
        host_name=name,
    )
    return JsonResponse(
        {
            "code": party.code,
            "url": public_url(request, party.get_absolute_url()),
            "ws": party.ws_path(),
            "member": host.as_dict(),
        },
        status=201,
    )


@api("POST")
def join_party(request, code):
    party = get_object_or_404(Party.objects.by_code(code))
    name = clean_name(json_body(request).get("name"))
    member = party.join(membership_key(request), name)
    return JsonResponse({"member": member.as_dict()})


@api("GET")
def party_snapshot(request, code):
    party, member = get_party_for_member(request, code)
    return JsonResponse(snapshot(party, member))


@api("GET")
def party_events(request, code):
    party, _ = get_party_for_member(request, code)
    try:
        since = int(request.GET.get("since", "0"))
        limit = int(request.GET.get("limit", str(MAX_EVENTS_PAGE)))
    except ValueError:
        raise ApiError("invalid_since", "since and limit must be integers.") from None
    if since < 0 or not 1 <= limit <= MAX_EVENTS_PAGE:
        raise ApiError("invalid_since", f"since >= 0 and 1 <= limit <= {MAX_EVENTS_PAGE}.")
    events = [event.as_message() for event in party.events_after(since, limit)]
    return JsonResponse(
        {
            "events": events,
            "last_seq": party.last_seq,
            "more": bool(events) and events[-1]["seq"] < party.last_seq,
        }
    )


@api("GET")
def render_candidates(request, code, render_id):
    """Every candidate of a best-of render, the set-aside ones too, with their scores; the same
    rule as the snapshot."""
    party, _ = get_party_for_member(request, code)
    pk = inbound.whole_number(render_id, 2**63 - 1)
    render = party.renders.filter(pk=pk).first() if pk else None
    if render is None:
        # Not the path's text: whatever it holds is not said back.
        what = f"render {pk}" if pk else "render with that id (a positive whole number)"
        raise ApiError("unknown_render", f"No {what} in this party.", 404)
    return JsonResponse(render.candidates())


@api("GET")
def party_messages(request, code):
    """The party's chat, paged back from the message `before` (the snapshot holds the newest)."""
    party, _ = get_party_for_member(request, code)
    before = request.GET.get("before")
    before_id = None if before is None else inbound.whole_number(before, 2**63 - 1)
    limit = inbound.whole_number(request.GET.get("limit", str(CHAT_PAGE)), MAX_CHAT_PAGE)
    if (before is not None and not before_id) or not limit:
        raise ApiError(
            "invalid_page", f"before must be a message id, and limit 1 to {MAX_CHAT_PAGE}."
        )
    messages, earlier = Message.chat_before(party, before_id, limit)
    return JsonResponse({"messages": [m.as_dict() for m in messages], "earlier": earlier})


@api("GET")
def party_tree(request, code):
    """The prompt tree as SVG, drawn by the server so the room, the gallery and the export
    show the same tree."""
    party, _ = get_party_for_member(request, code)
    try:
        width = int(request.GET.get("width", "360"))
    except ValueError:
        width = 0
    if not tree.MIN_WIDTH <= width <= tree.MAX_WIDTH:
        raise ApiError(
            "invalid_width", f"width must be {tree.MIN_WIDTH} to {tree.MAX_WIDTH} pixels."
        )
    return HttpResponse(tree.party_tree_svg(party, width), content_type="image/svg+xml")


@api("POST")
def upload_image(request, code):
    party, member = get_party_for_member(request, code)
    # Reading a public party is open to all; adding to it is for members only.
    if member is None:
        raise ApiError("not_a_member", "Join the party first.", 403)
    limits.check_upload(request)
    upload, fitted = accept_upload(
        party,
        member,
        request.FILES.get("image"),
        fit=fit_field(request, "fit"),
        model=fit_field(request, "model"),
    )
    return JsonResponse(upload_dict(upload, fitted), status=201)


@api("GET")
def models(request):
    return JsonResponse([preset.as_dict() for preset in all_presets().values()], safe=False)


@api("POST")
def model_tokens(request, name):
    """How many tokens a text is to the model's text encoder, and the most it reads: the
    composer's counter. A POST for the body: 1000 characters percent-encoded can be 12 KB, past
    what many proxies take in a URL. With `"weights": true` the text is read with prompt
    weights, as a render with that param reads it: counted without the syntax, its weighted
    pieces listed, malformed syntax refused as on submit. Nothing is stored."""
    preset = all_presets().get(name)
    if preset is None:
        raise ApiError("unknown_model", f"model must be one of {sorted(all_presets())}.", 404)
    if not preset.is_available():
        raise ApiError("model_unavailable", f"{name} has no weights on this server.", 409)
    body = json_body(request)
    text = body.get("text")
    if not isinstance(text, str) or len(text.strip()) > MAX_PROMPT_CHARS:
        raise ApiError(
            "invalid_prompt",
            f"text must be a string of at most {MAX_PROMPT_CHARS} characters after trimming.",
        )
    text = text.strip()
    weighted = body.get("weights", False)
    with engine_refusals():
        check_weights_param(preset, weighted)
        answer = {"tokens": token_count(preset, text, weighted), "limit": token_limit(preset)}
        if weighted:
            pieces = parse_weights(text).weighted
            answer["weighted"] = [{"text": p.strip(), "weight": w} for p, w in pieces]
    return JsonResponse(answer)


@api("GET")
def export_zip(request, code):
    party, _ = get_party_for_member(request, code)
    archive = export.build_zip(party)
    return FileResponse(archive, as_attachment=True, filename=export.download_name(party))


# --- Pages -----------------------------------------------------------------------------------


def join_code_context():
    """What the join-code form (partyhub/_join_form.html, home.js) checks a code against."""
    return {"join_code_alphabet": JOIN_CODE_ALPHABET, "join_code_length": JOIN_CODE_LENGTH}


def no_party(request, code):
    """The page for a code no party has: a 404 that says so and offers the join form again.
    Rendered here rather than raised, so that a mistyped code never ends on Django's debug page
    (`make run` runs with DEBUG=1) nor on a bare "Not Found"."""
    context = {"code": code, "code_typed": code, **join_code_context()}
    return render(request, "partyhub/no_party.html", context, status=404)


@ensure_csrf_cookie
def party_room(request, code):
    party = Party.objects.by_code(code).first()
    if party is None:
        return no_party(request, code)
    member = member_of(party, request)
    session_key = request.session.session_key
    return render(
        request,
        "partyhub/party.html",
        {
            "party": party,
            "member": member,
            # A removed session is told so, rather than offered a join form that refuses it.
            "removed": member is None
            and bool(session_key)
            and party.members.filter(session_key=session_key, removed=True).exists(),
            "default_model": default_preset(),
            # for the search box's "by meaning", and the composer's "Best of" (CLIP ranks)
            "clip": scoring.is_configured(),
            "best_of_max": most_best_of(),
            "max_prompt_chars": MAX_PROMPT_CHARS,
            "score_levels": score_levels(),
        },
    )


def party_stage(request, code):
    party = Party.objects.by_code(code).first()
    if party is None:
        return no_party(request, code)
    member = member_of(party, request)
    if member is None and not party.public:
        return redirect(party)  # the room asks for a name first
    room_url = public_url(request, party.get_absolute_url())
    return render(
        request,
        "partyhub/stage.html",
        {
            "party": party,
            "member": member,
            "room_url": room_url,
            "room_address": room_url.split("://", 1)[-1],
            "join_qr": qr.join_qr_svg(room_url),
            "room_url_is_loopback": qr.is_loopback(room_url),
        },
    )


def party_replay(request, code):
    """The party's archive as a timeline to scrub through; the same rule as the stage."""
    party = Party.objects.by_code(code).first()
    if party is None:
        return no_party(request, code)
    member = member_of(party, request)
    if member is None and not party.public:
        return redirect(party)
    events = [event.as_message() for event in party.events.order_by("seq")]
    names = {m.pk: m.name for m in party.members.all()}
    images = {image.pk: image.file.url for image in party.images.all()}
    replay = {"entries": timeline(events, names), "images": images}
    return render(
        request, "partyhub/replay.html", {"party": party, "member": member, "replay": replay}
    )
