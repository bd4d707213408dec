"""HTTP views: `/` and `/api/` answer as Paperless does without credentials (302, 401);
an upload is written under the media root and handed to the worker through Redis."""

import base64
import re
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import Document
from .tasks import consume_file

UNAUTHORIZED = {"detail": "Authentication credentials were not provided."}


def _user(request: HttpRequest):
    """The session's user, else the one HTTP Basic credentials name, else None."""
    if request.user.is_authenticated:
        return request.user
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return authenticate(request, username=username, password=password)


def _unauthorized() -> JsonResponse:
    response = JsonResponse(UNAUTHORIZED, status=401)
    response["WWW-Authenticate"] = 'Basic realm="api"'
    return response


def index(request: HttpRequest) -> HttpResponse:
    if _user(request) is None:
        return HttpResponseRedirect(f"{settings.LOGIN_URL}?next=/")
    return HttpResponse("<!doctype html><title>Paless</title><p>Paless (sandbox stand-in)</p>")


def login_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<!doctype html><title>Paless sign in</title><form method=post></form>")


def api_root(request: HttpRequest) -> HttpResponse:
    if _user(request) is None:
        return _unauthorized()
    base = request.build_absolute_uri("/api/")
    return JsonResponse({"documents": f"{base}documents/"})


def document_list(request: HttpRequest) -> HttpResponse:
    if _user(request) is None:
        return _unauthorized()
    docs = [d.as_json() for d in Document.objects.order_by("id")]
    return JsonResponse({"count": len(docs), "results": docs})


def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    if _user(request) is None:
        return _unauthorized()
    doc = Document.objects.filter(pk=pk).first()
    if doc is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    return JsonResponse(doc.as_json())


@csrf_exempt
def post_document(request: HttpRequest) -> HttpResponse:
    """Write the multipart field `document` under the media root, queue its consumption."""
    if _user(request) is None:
        return _unauthorized()
    if request.method != "POST":
        return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
    upload = request.FILES.get("document")
    if upload is None:
        return JsonResponse({"document": ["No file was submitted."]}, status=400)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.name or "upload").name)[:200]
    relative = Path("documents") / "originals" / f"{uuid.uuid4().hex}-{name}"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    doc = Document.objects.create(title=request.POST.get("title") or name, original_filename=name,
                                  storage_path=str(relative), size=upload.size or 0)
    result = consume_file.apply_async(args=[doc.pk])
    Document.objects.filter(pk=doc.pk).update(task_id=result.id)
    # Paperless answers with the consumption task's id
    return JsonResponse(result.id, safe=False)
