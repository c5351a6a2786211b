"""Pages of the versions app on the admin site: every tracked change, across models."""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import mark_safe

from .forms import ChangeFilterForm
from .rendering import text
from .search_tokens import SEARCH_TOKEN_PARAM, search_token_load, search_token_store
from .selectors import ChangeFilter, changes_page, tracked_models
from .subjects import SubjectAmbiguous, subject_find

__all__ = ["changes_view", "viewable_tracked_models"]

PER_PAGE = 50


def viewable_tracked_models(user) -> list:
    """The tracked models whose history `user` may read."""
    return [
        m
        for m in tracked_models()
        if user.has_perm(f"{m._meta.app_label}.view_{m._meta.model_name}")
    ]


def changes_view(request, admin_site):
    """Every tracked change, newest first, filterable; keyset pages, no full count."""
    allowed = viewable_tracked_models(request.user)
    if not allowed:
        raise PermissionDenied
    if request.method == "POST":
        # The filter may name a data subject: it is posted, and the address carries a token.
        form = ChangeFilterForm(request.POST, models=allowed)
        if form.is_valid():
            data = {name: request.POST.get(name, "") for name in form.fields}
            token = search_token_store(request, data)
            return HttpResponseRedirect(f"?{urlencode({SEARCH_TOKEN_PARAM: token})}")
    else:
        form = ChangeFilterForm(_filter_data(request), models=allowed)
    changes, next_cursor = [], None
    if not form.is_bound or form.is_valid():
        data = form.cleaned_data if form.is_bound else {}
        flt, problem = _filter(data, allowed)
        if problem:
            form.add_error(problem[0], problem[1])
        else:
            try:
                subject = subject_find(data["subject"]) if data.get("subject") else None
            except SubjectAmbiguous as exc:
                form.add_error("subject", str(exc))
            else:
                if data.get("subject") and subject is None:
                    form.add_error("subject", "No data subject has this email or id.")
                elif flt is not None:
                    flt = ChangeFilter(**{**flt.__dict__, "subject": subject})
                    changes, next_cursor = changes_page(
                        flt, models=allowed, after=request.GET.get("after", ""), per_page=PER_PAGE
                    )
    query = request.GET.copy()
    query.pop("after", None)
    rows = _rows(changes, admin_site)
    context = {
        **admin_site.each_context(request),
        "title": "All changes",
        "form": form,
        "rows": rows,
        "table_rows": mark_safe("".join(row["html"] for row in rows)),
        "next_url": f"?{_with(query, after=next_cursor)}" if next_cursor else None,
        "first_url": f"?{query.urlencode()}" if request.GET.get("after") else None,
    }
    return TemplateResponse(request, "versions/changes.html", context)


def _filter_data(request):
    """The filter a GET names: by its token, or by parameters that name no person."""
    token = request.GET.get(SEARCH_TOKEN_PARAM)
    if token:
        data = search_token_load(request, token)
        if data is None:
            messages.warning(request, "This search has expired: filter again.")
        return data
    data = request.GET.copy()
    data.pop("after", None)
    if data.pop("subject", None):
        messages.warning(
            request,
            "A data subject is searched with the form, never in the address: filter again.",
        )
    return data or None


def _with(query, **values) -> str:
    query = query.copy()
    for key, value in values.items():
        query[key] = value
    return query.urlencode()


def _filter(data, allowed):
    """A ChangeFilter from the form's data, or (field, message) for what is wrong."""
    model = None
    if data.get("model"):
        model = apps.get_model(data["model"])
        if model not in allowed:
            return None, ("model", "You may not read this model's history.")
    user_id = None
    if data.get("user"):
        user = get_user_model()._default_manager.filter(username=data["user"]).first()
        if user is None:
            return None, ("user", "No user has this username.")
        user_id = user.pk
    since = _day_start(data.get("since"))
    until = _day_start(data.get("until"), next_day=True)
    return ChangeFilter(
        model=model, user_id=user_id, action=data.get("action") or None, since=since, until=until
    ), None


def _day_start(day, *, next_day=False):
    if not day:
        return None
    if next_day:
        day += datetime.timedelta(days=1)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def _rows(changes, admin_site):
    """Display rows: users and foreign keys resolved for the whole page at once."""
    users = get_user_model()._default_manager.in_bulk(
        {c.row.history_user_id for c in changes if c.row.history_user_id is not None}
    )
    wanted: dict = {}
    for change in changes:
        for diff in change.changes:
            field = change.model._meta.get_field(diff.field)
            if field.is_relation:
                wanted.setdefault(field.related_model, set()).update(
                    v for v in (diff.old, diff.new) if v is not None
                )
    names = {
        model: {pk: str(obj) for pk, obj in model._base_manager.in_bulk(ids).items()}
        for model, ids in wanted.items()
    }
    rows, patterns = [], {}
    for change in changes:
        opts = change.model._meta
        shown = []
        for diff in change.changes:
            field = opts.get_field(diff.field)
            if field.is_relation:
                known = names.get(field.related_model, {})
                old, new = (
                    None if v is None else known.get(v, f"#{v} (gone)")
                    for v in (diff.old, diff.new)
                )
            else:
                old, new = diff.old, diff.new
            shown.append((diff.field, old, new))
        row = {
            "change": change,
            "user": users.get(change.row.history_user_id),
            "diffs": shown,
            "history_url": _history_url(admin_site, opts, change, patterns),
        }
        rows.append({**row, "html": _row_html(row)})
    return rows


def _row_html(row) -> str:
    """One row of the table of changes (when, who, IP, user agent, model, object, action,
    changed fields), as the template would have written it."""
    change, history = row["change"], row["change"].row
    if row["user"] is not None:
        who = text(row["user"])
    elif history.history_user_id is not None:
        who = f"user #{history.history_user_id}"
    else:
        who = "the system"
    if history.history_channel:
        who += f"<br><small>via {text(history.history_channel)}</small>"
    agent = text(history.history_user_agent)
    record = f"#{text(change.record_id)}"
    if row["history_url"]:
        record = f'<a href="{text(row["history_url"])}">{record}</a>'
    diffs = "".join(
        f"<li><strong>{text(field)}:</strong> {_or_dash(old)}&nbsp;&rarr;&nbsp;{_or_dash(new)}</li>"
        for field, old, new in row["diffs"]
    )
    when = _when(timezone.template_localtime(history.history_date))
    return (
        f'<tr><td class="nowrap">{when}</td><td class="who">{who}</td>'
        f'<td class="nowrap">{_or_dash(history.history_ip)}</td>'
        f'<td class="agent"><span title="{agent}">{agent or "-"}</span></td>'
        f"<td>{text(change.model._meta.label)}</td><td>{record}</td>"
        f'<td class="nowrap">{text(change.action)}</td>'
        f"<td>{f'<ul>{diffs}</ul>' if diffs else ''}</td></tr>"
    )


def _when(moment) -> str:
    """`moment` as the date filter writes "j M Y" and "H:i:s", on two lines."""
    return f"{moment.day} {MONTHS_3[moment.month].title()} {moment.year:04d}<br>{moment:%H:%M:%S}"


def _or_dash(value) -> str:
    return "-" if value is None else text(value)


def _history_url(admin_site, opts, change, patterns: dict):
    """The page of `change`'s version; reversed once per model and page (kept in
    `patterns`), integer ids filled in."""
    record_id, version_id = change.record_id, change.row.pk
    name = f"{admin_site.name}:{opts.app_label}_{opts.model_name}_simple_history"
    try:
        if type(record_id) is int and type(version_id) is int:
            pattern = patterns.get(name)
            if pattern is None:
                pattern = patterns[name] = reverse(name, args=["RECORD", "VERSION"])
            return pattern.replace("RECORD", str(record_id)).replace("VERSION", str(version_id))
        return reverse(name, args=[record_id, version_id])
    except NoReverseMatch:
        return None
