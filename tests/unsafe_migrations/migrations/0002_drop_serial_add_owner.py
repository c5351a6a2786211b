"""Unsafe on purpose: code still running reads `serial` (dropped) and inserts rows without
`owner` (a new NOT NULL column without a default)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("unsafe_migrations", "0001_initial")]

    operations = [
        migrations.RemoveField(model_name="gadget", name="serial"),
        migrations.AddField(
            model_name="gadget",
            name="owner",
            field=models.CharField(max_length=100, default="x"),
            preserve_default=False,
        ),
    ]
