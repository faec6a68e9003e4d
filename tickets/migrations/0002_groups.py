"""Groups `agents` and `supervisors` with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AGENT_PERMISSIONS = [
    ("tickets", "view_ticket"),
    ("tickets", "decide_ticket"),
    ("tickets", "claim_ticket"),
    ("tickets", "view_ticketevent"),
    ("members", "view_member"),
    ("members", "view_coverage"),
]
SUPERVISOR_PERMISSIONS = [
    *AGENT_PERMISSIONS,
    ("tickets", "take_over_ticket"),
    ("tickets", "view_supervision"),
    ("workflows", "view_outboxmessage"),
]


def create_groups(apps, schema_editor):
    # Permissions are normally created after migrate; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in (("agents", AGENT_PERMISSIONS), ("supervisors", SUPERVISOR_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["agents", "supervisors"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0001_initial"),
        ("members", "0001_initial"),
        ("workflows", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
