from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audiences", "0005_profile_timezone_utc_was_unknown")]

    operations = [
        migrations.AddField(
            model_name="profileimport",
            name="match_on",
            field=models.CharField(
                default="email", help_text="The identity namespace rows are matched to profiles by.", max_length=64
            ),
        ),
        migrations.AddField(
            model_name="profileimport",
            name="list_separator",
            field=models.CharField(default="|", help_text="Between the items of a list cell.", max_length=1),
        ),
        migrations.AddField(
            model_name="profileimport",
            name="strict",
            field=models.BooleanField(default=False, help_text="Reject a whole row for one bad field."),
        ),
        migrations.AddField(
            model_name="profileimport",
            name="rows_with_warnings",
            field=models.PositiveIntegerField(
                default=0, help_text="Rows stored without one or more of their fields (each reported)."
            ),
        ),
        migrations.AddField(
            model_name="importrowerror",
            name="value",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="importrowerror",
            name="rejected",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="importrowerror",
            name="row",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
