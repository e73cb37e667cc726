"""Outputs: the months the bucket has published, and one month's figures, maps and tables.

The images and downloads come from the console itself (/outputs/file), which reads the object
with the user's credentials: the page's Content-Security-Policy lets it load nothing from
another origin, and a presigned S3 URL would be one (and would carry a signature into the
browser's history).
"""

from __future__ import annotations

import re
from html import escape

from bisonflow.console.connection import Connection
from bisonflow.console.frame import page
from bisonflow.console.outputs import (
    MonthOutputs,
    OutputFile,
    human_size,
    is_published_key,
    month_outputs,
    published_months,
)
from bisonflow.console.pages import execution_path
from bisonflow.console.server import Request, Response, Route, text_response
from bisonflow.layout import MonthError, MonthLayout
from bisonflow.stats.streamed_objects import content_type


def outputs_page(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    s3 = connection.client("s3")
    months = published_months(s3, connection.bucket)
    if not months:
        body = (
            '<section id="months"><h1>Outputs</h1><p class="muted">'
            f"s3://{escape(connection.bucket)} has no published month yet: a month is "
            "published by its run's last step, PublishMonth.</p></section>"
        )
        return page(connection, request, "Outputs", body)
    asked = request.query.get("month")
    try:
        month = MonthLayout.for_month(asked) if asked else months[0]
    except MonthError as exc:
        return page(connection, request, "Outputs", _problem(str(exc)), status=400)
    shown = month_outputs(s3, connection.bucket, month)
    body = _months_section(request, connection.bucket, months, month.month)
    if shown is None:
        body += _problem(f"{month.month} is not published in s3://{connection.bucket}.")
        return page(connection, request, "Outputs", body, status=404)
    body += _month_section(request, shown)
    return page(connection, request, f"Outputs {month.month}", body)


def file_response(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    """One published object, its whole body in the response: the Response type holds bytes,
    and a month's published files (figures, CSV copies, parquet parts) are small enough to
    hold in memory once each."""
    key = request.query.get("key", "")
    s3 = connection.client("s3")
    if not key or not is_published_key(s3, connection.bucket, key):
        return text_response(f"bisonflow console: {key!r} is not a published month's file", 404)
    body = s3.get_object(Bucket=connection.bucket, Key=key)["Body"].read()
    headers = {}
    if request.query.get("download") == "1":
        name = key.rsplit("/", 1)[-1].replace('"', "")
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(body, 200, content_type(key), headers)


def _months_section(request: Request, bucket: str, months: list[MonthLayout], shown: str) -> str:
    active = ' class="active"'
    links = "".join(
        f'<li><a href="{escape(request.href("/outputs", month=m.month))}"'
        f"{active if m.month == shown else ''}>{escape(m.month)}</a></li>"
        for m in months
    )
    return (
        f'<section id="months"><h1>Outputs</h1><p class="muted">The months published in '
        f"s3://{escape(bucket)}, newest first.</p><ul>{links}</ul></section>"
    )


def _month_section(request: Request, shown: MonthOutputs) -> str:
    arn = shown.execution_arn
    by = (
        f'published by <a href="{escape(request.href(execution_path(arn)))}" class="arn">'
        f"{escape(arn)}</a>"
        if arn
        else "published in place, before runs existed (its marker names no execution)"
    )
    at = f" at {escape(shown.published_at)}" if shown.published_at else ""
    return (
        f'<section id="month"><h2>{escape(shown.month)}</h2><p id="published-by">{by}{at}.</p>'
        "</section>"
        + _gallery_section(request, shown.figures())
        + _files_section(request, shown.files)
    )


def _gallery_section(request: Request, figures: list[OutputFile]) -> str:
    if not figures:
        return '<section><h2>Figures and maps</h2><p class="muted">None published.</p></section>'
    items = "".join(
        f'<figure><a href="{escape(_file_href(request, f))}">'
        f'<img src="{escape(_file_href(request, f))}" alt="{escape(f.caption)}" loading="lazy">'
        f"</a><figcaption>{escape(f.caption)}</figcaption></figure>"
        for f in figures
    )
    return (
        "<section><h2>Figures and maps</h2>"
        f'<div class="gallery" id="gallery">{items}</div></section>'
    )


def _files_section(request: Request, files: tuple[OutputFile, ...]) -> str:
    rows = "".join(_file_row(request, f) for f in files)
    return (
        '<section><h2>Files</h2><table class="list" id="files"><thead><tr><th>File</th>'
        "<th>Size</th><th>Bytes</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _file_row(request: Request, file: OutputFile) -> str:
    if file.size is None:
        return (
            f'<tr><td class="arn">{escape(file.key)}</td><td colspan="3" class="muted">'
            "named by the month's marker, but not in the bucket</td></tr>"
        )
    download = request.href("/outputs/file", key=file.key, download="1")
    return (
        f'<tr><td class="arn">{escape(file.key)}</td><td class="number">'
        f'{escape(human_size(file.size))}</td><td class="number">{file.size}</td>'
        f'<td><a href="{escape(download)}" download>Download</a></td></tr>'
    )


def _file_href(request: Request, file: OutputFile) -> str:
    return request.href("/outputs/file", key=file.key)


def _problem(message: str) -> str:
    return f'<section><p class="error" id="problem">{escape(message)}</p></section>'


ROUTES = (
    Route("GET", "/outputs", outputs_page),
    Route("GET", "/outputs/file", file_response),
)
