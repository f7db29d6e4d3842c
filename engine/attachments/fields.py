"""The attachment field of a form, and a submission's files taken in.

A form declares a file field as a top-level property with `x-attachment` (and,
as OpenAPI spells a file, `"format": "binary"`):

    "evidence_file": {
      "title": "验证证据", "x-title-en": "Verification evidence",
      "format": "binary",
      "x-attachment": {"types": ["pdf", "png", "jpeg", "xlsx", "docx"], "max_bytes": 5242880}
    }

`types` are kinds of engine.attachments.kinds; `max_bytes` (optional) is at most the
installation's limit per file. The engine fills in the field's value schema: the
value kept in the data, the completing event and the instance is a reference to the
stored file, `{"sha256", "name", "size", "type"}` (never the bytes; `type` is the
media type sniffed from the content).

What a submission sends for the field: an `Upload` (a page's multipart file), or
`{"name": "...", "content_base64": "..."}` (the JSON API). `take` checks each
against the field's rule and the installation's limits, and replaces it by its
reference; the bytes are stored only once the whole command has succeeded.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.attachments import kinds
from engine.attachments.store import Limits, digest, is_sha256
from engine.errors import FieldError

KEYWORD = "x-attachment"
FORMAT = "binary"
REFERENCE_KEYS = ("sha256", "name", "size", "type")
NAME_MAX = 255
_RULE_KEYS = frozenset({"types", "max_bytes"})
_NAME_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Upload:
    """A file as a page posts it: the name the browser gave and its bytes."""

    name: str
    content: bytes


@dataclass(frozen=True)
class Rule:
    kinds: tuple[str, ...]
    max_bytes: int | None

    @property
    def media_types(self) -> frozenset[str]:
        return frozenset().union(*(kinds.KINDS[k] for k in self.kinds))


def is_attachment(prop: Any) -> bool:
    return isinstance(prop, Mapping) and KEYWORD in prop


def rules_of(schema: Mapping[str, Any]) -> dict[str, Rule]:
    """The attachment fields of a (checked) form schema, by name."""
    found = {}
    for name, prop in (schema.get("properties") or {}).items():
        if is_attachment(prop):
            rule = prop[KEYWORD]
            found[name] = Rule(tuple(rule["types"]), rule.get("max_bytes"))
    return found


def problems(schema: Mapping[str, Any], nested: list[str]) -> list[str]:
    """Why the schema's attachment fields cannot be used. `nested`: the paths of
    `x-attachment` found below the top level (a file is a field of its own)."""
    found = [f"{path}: an attachment must be a top-level field" for path in nested]
    for name, prop in (schema.get("properties") or {}).items():
        if not is_attachment(prop):
            continue
        rule = prop[KEYWORD]
        where = f"{name}: {KEYWORD}"
        if not isinstance(rule, Mapping):
            found.append(f"{where} must be an object with types (and max_bytes)")
            continue
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            found.append(f"{where} has unknown keys {', '.join(map(str, unknown))}")
        types = rule.get("types")
        if (
            not isinstance(types, list)
            or not types
            or not all(isinstance(t, str) and t in kinds.KINDS for t in types)
        ):
            found.append(f"{where}.types must list kinds among {', '.join(kinds.KINDS)}")
        limit = rule.get("max_bytes")
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            found.append(f"{where}.max_bytes must be a positive number of bytes")
        if prop.get("type", "object") != "object":
            found.append(f"{name}: an attachment's value is an object (a stored file's reference)")
        if prop.get("format", FORMAT) != FORMAT:
            found.append(f"{name}: an attachment's format is {FORMAT!r}")
    return found


def value_schema(rule: Mapping[str, Any]) -> dict[str, Any]:
    """What an attachment field holds once taken in: the stored file's reference."""
    types = rule.get("types")
    named = types if isinstance(types, list) else []
    media = sorted(frozenset().union(*(kinds.KINDS.get(t, frozenset()) for t in named)))
    size: dict[str, Any] = {"type": "integer", "minimum": 1}
    if isinstance(rule.get("max_bytes"), int):
        size["maximum"] = rule["max_bytes"]
    return {
        "type": "object",
        "format": FORMAT,
        "properties": {
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "maxLength": 64},
            "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
            "size": size,
            "type": {"type": "string", "enum": media},
        },
        "required": list(REFERENCE_KEYS),
        "additionalProperties": False,
    }


def expand(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with each attachment field's value schema filled in (titles, help
    and the rule kept)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not any(
        is_attachment(p) for p in properties.values()
    ):
        return dict(schema)
    return {
        **schema,
        "properties": {
            name: {**prop, **value_schema(prop[KEYWORD])} if is_attachment(prop) else prop
            for name, prop in properties.items()
        },
    }


def is_reference(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == set(REFERENCE_KEYS)
        and is_sha256(value.get("sha256"))
    )


def references(payload: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The files a `task_completed` event's payload records: (field, reference) for
    each field its `attachments` list names."""
    data = payload.get("data")
    named = payload.get("attachments")
    if not isinstance(data, Mapping) or not isinstance(named, list):
        return []
    return [
        (str(name), dict(data[name]))
        for name in named
        if isinstance(name, str) and is_reference(data.get(name))
    ]


@dataclass
class Intake:
    """A submission with its files taken in: the data holding references, the files
    to store once the command succeeds, the fields that hold one, what was refused."""

    data: dict[str, Any]
    files: list[bytes] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)


def take(schema: Mapping[str, Any], data: Any, limits: Limits) -> Intake:
    """Check each attachment field's file against its rule and `limits`, and put its
    reference in its place. A refused file is left out of the data, and named (by its
    field) in `errors`."""
    if not isinstance(data, Mapping):
        return Intake(data)  # the form's validation refuses it
    rules = rules_of(schema)
    intake = Intake(dict(data))
    total = 0
    for name, rule in rules.items():
        value = data.get(name)
        if value is None:
            continue
        limit = min(rule.max_bytes or limits.max_file_bytes, limits.max_file_bytes)
        upload = _upload(value, limit)
        if isinstance(upload, FieldError):
            intake.errors.append(FieldError(name, upload.code, upload.message, upload.params))
            del intake.data[name]
            continue
        refusal = _refusal(name, upload, rule, limit)
        if refusal is None and len(intake.files) >= limits.max_files:
            refusal = FieldError(
                name,
                "attachment_count",
                f"at most {limits.max_files} files in one submission",
                {"expected": limits.max_files},
            )
        if refusal is None and total + len(upload.content) > limits.max_total_bytes:
            refusal = FieldError(
                name,
                "attachment_total",
                f"the files of one submission may hold at most {limits.max_total_bytes} bytes",
                {"expected": limits.max_total_bytes},
            )
        if refusal is not None:
            intake.errors.append(refusal)
            del intake.data[name]
            continue
        media_type = kinds.sniff(upload.content)
        total += len(upload.content)
        intake.files.append(upload.content)
        intake.fields.append(name)
        intake.data[name] = {
            "sha256": digest(upload.content),
            "name": file_name(upload.name, str(media_type)),
            "size": len(upload.content),
            "type": media_type,
        }
    return intake


def _upload(value: Any, limit: int) -> Upload | FieldError:
    if isinstance(value, Upload):
        return value
    if isinstance(value, Mapping) and set(value) == {"name", "content_base64"}:
        name, encoded = value["name"], value["content_base64"]
        if not isinstance(name, str) or not isinstance(encoded, str):
            return _invalid("name and content_base64 are strings")
        # Refused before decoding: the encoded text of a file too large is too long.
        if len(encoded) > 4 * ((limit + 2) // 3) + 4:
            return _too_large(limit)
        try:
            content = base64.b64decode(encoded.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return _invalid("content_base64 is not base64")
        return Upload(name, content)
    return _invalid('send the file as {"name": ..., "content_base64": ...}')


def _refusal(name: str, upload: Upload, rule: Rule, limit: int) -> FieldError | None:
    if not upload.content:
        return FieldError(name, "attachment_empty", "the file is empty")
    if len(upload.content) > limit:
        error = _too_large(limit)
        return FieldError(name, error.code, error.message, error.params)
    media_type = kinds.sniff(upload.content)
    if media_type is None or media_type not in rule.media_types:
        allowed = ", ".join(rule.kinds)
        return FieldError(
            name,
            "attachment_type",
            f"not a file of an allowed type ({allowed}), judged by its content",
            {"expected": allowed},
        )
    return None


def _too_large(limit: int) -> FieldError:
    return FieldError("", "attachment_too_large", f"larger than {limit} bytes", {"expected": limit})


def _invalid(message: str) -> FieldError:
    return FieldError("", "attachment_invalid", message)


def file_name(given: str, media_type: str) -> str:
    """The name to keep: the last part of what the client sent (no folders), without
    control characters, at most NAME_MAX characters; a name that leaves nothing is
    named for its type."""
    base = re.split(r"[\\/]", given or "")[-1]
    base = _NAME_UNSAFE.sub("", base).strip().lstrip(".")
    if not base:
        base = f"attachment.{kinds.EXTENSIONS.get(media_type, 'bin')}"
    if len(base) > NAME_MAX:
        _stem, dot, extension = base.rpartition(".")
        keep = extension if dot and len(extension) <= 10 else ""
        base = base[: NAME_MAX - len(keep) - 1] + "." + keep if keep else base[:NAME_MAX]
    return base
