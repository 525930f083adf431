"""The relay's file routes: a page uploads a file, the relay hands it to the provider's Files API.

``POST /api/files`` (multipart, field ``file``) answers ``{"id", "filename", "bytes"}``;
``GET /api/files`` lists, and ``DELETE /api/files/{id}`` deletes, the files *this client*
uploaded; a chat request names them in ``"files": [id, ...]`` and the relay puts their text in
a system message (:func:`helpers.attachments.afile_message`, the lessons' join). The key stays here.

Deliberate choices:

- **Everyone using a relay shares its key, so the provider's file list is shared too.** The
  relay remembers which client (:func:`helpers.relay.identity.client_identity`) uploaded each
  file and shows, deletes and attaches only a client's own; another's id is a 404, as if it
  did not exist. The record is in memory: one process (``--workers`` would each have their own)
  and lost on restart; the provider keeps the files, the teacher can list them with the SDK.
- **Bad uploads fail here, before the provider:** an empty file, a type the page does not offer
  (:data:`ACCEPTED`, the types the offline provider extracts), a body that is not multipart are
  a 400/415 with a message; a body over the relay's limit is the guards' 413. A provider that
  refuses (its limits) is mapped by :func:`helpers.errors.describe_failure`, key scrubbed.
- **Under hostile use** (issue 23): the form is parsed in a worker thread by the offline
  provider's bounded parser (:func:`helpers.offline.filestore.parse_upload`: one level, a
  handful of parts; a hostile body is a 400, never a 500); an upload is a request for
  ``--requests-per-minute`` (:meth:`~helpers.relay.limits.Limiter.count_request`, the relay's
  limiter, ``app.state.limiter``); the per-client cap is a slot *reserved* before the provider
  is asked and given back if it refuses, so concurrent uploads cannot overshoot it; the files
  attached to one question hold at most :data:`MAX_ATTACHED_CHARS` characters of text (a 413
  past that, before any token is counted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import anyio.to_thread
import openai
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..attachments import TooMuchText, afile_message
from ..errors import describe_failure
from ..offline.errors import BadRequest
from ..offline.filestore import TEXT_SUFFIXES, NotMultipart, parse_upload
from ..providers.table import MODELS
from .bodies import error_response
from .limits import Limiter, RelayLimit

__all__ = ["ACCEPTED", "MAX_ATTACHED_CHARS", "MAX_FILES_PER_CLIENT", "FileOwners",
           "add_file_routes", "files_message"]

#: File name endings the relay accepts (and the page offers).
ACCEPTED = (".pdf", ".docx", *TEXT_SUFFIXES)
MAX_FILES_PER_CLIENT = 20
#: Characters of text the files of one question may hold: the largest context window in the
#: table at 4 characters a token (OpenAI's rule of thumb, helpers/money/tokens.py).
MAX_ATTACHED_CHARS = 4 * max(m.context_window for m in MODELS.values())


class FileOwners:
    """Which client uploaded which file (id -> client, metadata), in memory, and the upload
    slots each client has reserved (at most ``max_files`` files and reservations together)."""

    def __init__(self, max_files: int = MAX_FILES_PER_CLIENT) -> None:
        self.max_files = max_files
        self._files: dict[str, tuple[str, dict[str, Any]]] = {}
        self._reserved: Counter[str] = Counter()

    def reserve(self, client: str) -> bool:
        """Take an upload slot for ``client``; False when its files and slots are at the cap.

        No await between the check and the taking: on the event loop, this is atomic.
        """
        if len(self.of(client)) + self._reserved[client] >= self.max_files:
            return False
        self._reserved[client] += 1
        return True

    def release(self, client: str) -> None:
        """Give back a slot :meth:`reserve` took (the upload is now a file, or failed)."""
        self._reserved[client] -= 1
        if self._reserved[client] <= 0:
            del self._reserved[client]

    def add(self, client: str, meta: dict[str, Any]) -> None:
        """Remember that ``client`` uploaded the file ``meta["id"]``."""
        self._files[meta["id"]] = (client, meta)

    def of(self, client: str) -> list[dict[str, Any]]:
        """Return the metadata of the files ``client`` uploaded, oldest first."""
        return [meta for owner, meta in self._files.values() if owner == client]

    def owns(self, client: str, file_id: str) -> bool:
        """Return True if ``client`` uploaded ``file_id``."""
        return self._files.get(file_id, ("", {}))[0] == client

    def forget(self, file_id: str) -> None:
        """Forget a deleted file."""
        self._files.pop(file_id, None)


def _not_found(file_id: str) -> JSONResponse:
    return error_response(404, "not_found", f"No file {file_id[:64]!r} of yours on this relay")


def add_file_routes(app: FastAPI, provider: openai.AsyncOpenAI, identify: Callable[[Any], str],
                    *, secret: str | None = None, limiter: Limiter | None = None) -> FileOwners:
    """Add the file routes to ``app``; return the owners record (chat requests check it).

    ``identify(scope)`` names the client a request comes from; ``secret`` is scrubbed from
    any error message; ``limiter`` counts uploads as requests (default: ``app.state.limiter``,
    which :func:`helpers.relay.create_app` sets before it adds these routes).
    """
    owners = FileOwners()
    limiter = limiter or getattr(app.state, "limiter", None)

    def refuse(exc: Exception) -> JSONResponse:
        failure = describe_failure(exc, secret=secret)
        return error_response(failure.status, failure.type, failure.message)

    @app.post("/api/files")
    async def upload(request: Request) -> Response:
        """Hand an uploaded file to the provider's Files API (purpose file-extract)."""
        client = identify(request.scope)
        try:
            if limiter is not None:
                await limiter.count_request(request.scope)
            name, data, _ = await anyio.to_thread.run_sync(  # off the event loop
                parse_upload, request.headers.get("content-type", ""), await request.body())
        except RelayLimit as exc:
            return exc.response()
        except BadRequest as exc:
            return error_response(415 if isinstance(exc, NotMultipart) else 400,
                                  "invalid_request_error", str(exc))
        name = PurePath(name.replace("\\", "/")).name[:200] or "upload"
        if PurePath(name).suffix.lower() not in ACCEPTED:
            return error_response(415, "unsupported_file_type",
                                  f"{name!r}: this relay takes {', '.join(ACCEPTED[:5])} and "
                                  "other text files")
        if not data:
            return error_response(400, "invalid_request_error", f"{name!r} is empty")
        if not owners.reserve(client):
            return error_response(429, "too_many_files", f"At most {owners.max_files} "
                                  "files per client: delete one first")
        try:
            made = await provider.files.create(file=(name, data), purpose="file-extract")
            meta = {"id": made.id, "filename": made.filename, "bytes": made.bytes}
            owners.add(client, meta)  # the slot becomes the file, with no await between
        except Exception as exc:
            return refuse(exc)
        finally:
            owners.release(client)
        return JSONResponse(meta)

    @app.get("/api/files")
    async def listing(request: Request) -> dict:
        """List the files this client uploaded."""
        return {"data": owners.of(identify(request.scope))}

    @app.delete("/api/files/{file_id}")
    async def delete(file_id: str, request: Request) -> Response:
        """Delete one of this client's files at the provider."""
        if not owners.owns(identify(request.scope), file_id):
            return _not_found(file_id)
        try:
            await provider.files.delete(file_id)
        except openai.NotFoundError:
            pass  # gone already: forget it too
        except Exception as exc:
            return refuse(exc)
        owners.forget(file_id)
        return JSONResponse({"id": file_id, "deleted": True})

    return owners


async def files_message(provider: openai.AsyncOpenAI, owners: FileOwners, client: str,
                        file_ids: list[str]) -> dict[str, str] | JSONResponse:
    """Return the system message with the client's files' text, or a 404 for another's id
    (a 413 when their text is longer than :data:`MAX_ATTACHED_CHARS`)."""
    for file_id in file_ids:
        if not owners.owns(client, file_id):
            return _not_found(file_id)
    try:
        return await afile_message(provider, file_ids, max_chars=MAX_ATTACHED_CHARS)
    except TooMuchText as exc:
        return error_response(413, "attachments_too_large", str(exc))
