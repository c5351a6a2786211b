"""Admin pages of the compliance app."""

import csv

from django.contrib import admin
from django.http import HttpResponse
from django.template.response import TemplateResponse

from .selectors import inventory

CSV_COLUMNS = [
    "model",
    "subject path",
    "field",
    "category",
    "anonymiser",
    "exported",
    "erasure",
    "legal ground",
    "retention basis",
    "purpose",
    "lawful basis",
    "history",
]


def inventory_view(request):
    """Personal-data inventory: every registered model, its fields and their handling."""
    rows = inventory()
    if request.GET.get("format") == "csv":
        return _inventory_csv(rows)
    context = {
        **admin.site.each_context(request),
        "title": "Personal-data inventory",
        "rows": rows,
        "field_count": sum(len(row.fields) for row in rows),
    }
    return TemplateResponse(request, "admin/compliance/inventory.html", context)


def _inventory_csv(rows):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="personal-data-inventory.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        for field in row.fields:
            writer.writerow(
                [
                    row.label,
                    " / ".join(row.subject_paths),
                    field.name,
                    field.category,
                    field.anonymiser,
                    "yes" if field.exported else "no",
                    row.erasure,
                    row.legal_ground,
                    row.retention_basis,
                    row.purpose,
                    row.lawful_basis,
                    "yes" if row.history_tracked else "no",
                ]
            )
    return response
