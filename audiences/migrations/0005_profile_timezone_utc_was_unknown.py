"""Before 0004 every profile's zone defaulted to "UTC", whether known or not: read it as unknown (""), so campaigns
delivered in profiles' zones and quiet hours use the campaign's zone for them rather than UTC."""

from django.db import migrations


def utc_was_the_default(apps, schema_editor):
    apps.get_model("audiences", "Profile").objects.filter(timezone="UTC").update(timezone="")


class Migration(migrations.Migration):
    dependencies = [("audiences", "0004_profile_timezone_optional")]

    operations = [migrations.RunPython(utc_was_the_default, migrations.RunPython.noop)]
