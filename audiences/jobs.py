"""RQ jobs of the audiences app: they take ids (jobs are JSON) and call the services."""

from audiences import indexes
from audiences.services import imports


def import_profiles(import_id: int) -> None:
    imports.import_run(import_id=import_id)


def sync_attribute_indexes() -> None:
    indexes.sync_attribute_indexes()
