from django.db import migrations

BUILTIN = [
    ("email", "Email address", "email"),
    ("phone", "Phone number", "phone"),
    ("crm_id", "CRM id", "text"),
]


def create(apps, schema_editor):
    namespace = apps.get_model("audiences", "IdentityNamespace")
    for name, label, kind in BUILTIN:
        namespace.objects.update_or_create(name=name, defaults={"label": label, "kind": kind, "builtin": True})


class Migration(migrations.Migration):
    dependencies = [("audiences", "0002_profiles_schema_imports")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
