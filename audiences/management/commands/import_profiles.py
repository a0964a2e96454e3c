"""Import profiles from a CSV file, through the same pipeline as the import pages: the file is kept through the
storage API, read streaming and stored chunk by chunk. Runs here (printing progress) or in a worker (--async).

    manage.py import_profiles contacts.csv --map Email=email --map Mobile=phone --map "Client ID=identity:crm_id" \\
        --map City=attribute:city --map "Shoe size=new:shoe_size:number" --region FR --user admin

Targets: email, phone, country, timezone, locale, ignore, identity:<namespace>, attribute:<name>,
consent:<channel>, new:<name>[:<type>] (a new attribute; without a type, the one inferred from the first 1,000
values). --generate N writes a synthetic file of N profiles instead (for benchmarks).
"""

import csv
import random
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from audiences import csv_files
from audiences.attributes import infer_type
from audiences.models import Audience, ProfileImport
from audiences.services import imports as services
from audiences.services.attributes import AttributeDeclarationError
from config import queues
from permissions.roles import Role


class Command(BaseCommand):
    help = "Import profiles from a CSV file (UTF-8, comma, semicolon or tab separated, with a header line)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file to import, or to write with --generate.")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=TARGET",
            help="What a column fills (repeat for each column; unmapped columns are ignored).",
        )
        parser.add_argument("--region", default="", help="Country (FR, GB, ...) of phone numbers without +code.")
        parser.add_argument(
            "--match-on",
            help="The identity namespace rows are matched to profiles by (default: email when mapped, else the "
            "first identity column).",
        )
        parser.add_argument(
            "--list-separator", default="|", choices=csv_files.LIST_SEPARATORS, help="Between a list's items."
        )
        parser.add_argument(
            "--strict", action="store_true", help="Reject a whole row for one bad field (default: leave it out)."
        )
        parser.add_argument("--user", help="Who imports (default: the first active administrator).")
        parser.add_argument("--audience", help="Add the profiles to this uploaded list (created if missing).")
        parser.add_argument("--async", dest="run_async", action="store_true", help="Queue it for a worker.")
        parser.add_argument("--chunk-rows", type=int, help="Rows per chunk (default IMPORTS_CHUNK_ROWS, 1000).")
        parser.add_argument("--generate", type=int, metavar="N", help="Write a synthetic CSV of N profiles.")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if options["generate"] is not None:
            generate(path, options["generate"])
            self.stdout.write(f"Wrote {options['generate']:,} profiles to {path} ({path.stat().st_size:,} bytes).")
            return
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        actor = self._actor(options["user"])
        with path.open("rb") as handle:
            try:
                profile_import = services.import_create(actor=actor, upload=File(handle, name=path.name))
            except csv_files.FileFormatError as error:
                raise CommandError(str(error)) from None
        try:
            mapping, new_attributes = self._mapping(profile_import, options["map"])
            audience, new_audience_name = self._audience(options["audience"])
            services.import_start(
                profile_import=profile_import,
                actor=actor,
                mapping=mapping,
                new_attributes=new_attributes,
                default_region=options["region"],
                match_on=options["match_on"],
                list_separator=options["list_separator"],
                strict=options["strict"],
                audience=audience,
                new_audience_name=new_audience_name,
                run_async=options["run_async"],
            )
        except (CommandError, csv_files.MappingError, AttributeDeclarationError) as error:
            # Nothing was imported: leave no upload behind waiting for a mapping.
            profile_import.file.delete(save=False)
            profile_import.delete()
            raise CommandError(str(error)) from None
        if options["run_async"]:
            self.stdout.write(
                f"Import {profile_import.pk} queued; follow it at /audiences/imports/{profile_import.pk}/"
            )
            return
        self._run(profile_import, options["chunk_rows"])

    def _actor(self, username):
        users = get_user_model().objects.filter(is_active=True)
        if username:
            try:
                return users.get(username=username)
            except get_user_model().DoesNotExist:
                raise CommandError(f"no active user {username!r}") from None
        actor = users.filter(Q(is_superuser=True) | Q(groups__name=Role.ADMINISTRATOR)).order_by("pk").first()
        if actor is None:
            raise CommandError("no active administrator: name the importing user with --user")
        return actor

    def _mapping(self, profile_import: ProfileImport, pairs: list[str]):
        mapping, new_attributes, samples = {}, {}, None
        for pair in pairs:
            column, sep, target = pair.rpartition("=")
            if not sep or not column:
                raise CommandError(f"--map {pair!r}: write COLUMN=TARGET")
            if column not in profile_import.header:
                raise CommandError(f"--map {pair!r}: no column {column!r} (the columns: {profile_import.header})")
            if not target.startswith("new:"):
                mapping[column] = target
                continue
            _, name, type_ = (target.split(":", 2) + [""])[:3]
            if not type_:
                if samples is None:
                    samples = self._samples(profile_import)
                type_ = infer_type(samples[profile_import.header.index(column)])
                self.stdout.write(f"Column {column!r}: new attribute {name} of type {type_} (inferred)")
            new_attributes[column] = (name, type_)
        return mapping, new_attributes

    def _samples(self, profile_import):
        with default_storage.open(profile_import.file.name, "rb") as binary:
            fmt = csv_files.CsvFormat(delimiter=profile_import.delimiter, header=profile_import.header)
            return csv_files.sample_columns(binary, fmt)

    def _audience(self, name):
        if not name:
            return None, ""
        audience = Audience.objects.filter(name=name).first()
        return (audience, "") if audience else (None, name)

    def _run(self, profile_import, chunk_rows):
        started = time.monotonic()
        last_report = [0.0]

        def progress(current: ProfileImport):
            if time.monotonic() - last_report[0] >= 2:
                last_report[0] = time.monotonic()
                percent = current.bytes_read * 100 // max(current.size_bytes, 1)
                self.stdout.write(
                    f"{percent:3d}%  {current.rows_read:,} rows read, {current.rows_stored:,} stored "
                    f"({current.rows_with_warnings:,} with a field left out), {current.rows_rejected:,} rejected"
                )

        queues.keep_no_query_log()
        status = "running"
        while status == "running":
            status = services.import_run(
                import_id=profile_import.pk, chunk_rows=chunk_rows, max_seconds=10**9, on_chunk=progress
            )
        elapsed = time.monotonic() - started
        profile_import.refresh_from_db()
        done = profile_import
        self.stdout.write(
            f"Import {done.pk}: {done.get_status_display().lower()} in {elapsed:.1f} s "
            f"({done.rows_read / max(elapsed, 0.001):,.0f} rows/s). Rows read {done.rows_read:,}, stored "
            f"{done.rows_stored:,} ({done.rows_with_warnings:,} with a field left out), rejected "
            f"{done.rows_rejected:,}; profiles created {done.profiles_created:,}, updated {done.profiles_updated:,}."
        )
        if done.error:
            self.stderr.write(f"Error: {done.error}")
        for error in done.row_errors.defer("row")[:10]:
            outcome = "row rejected" if error.rejected else "left out"
            where = f" [{error.column}]" if error.column else ""
            self.stdout.write(f"  line {error.line}{where}: {error.problem} ({outcome})")
        if done.row_errors.count() > 10:
            self.stdout.write(
                f"  ... the full report: /audiences/imports/{done.pk}/errors.csv; the rows to fix: "
                f"/audiences/imports/{done.pk}/rows-to-fix.csv"
            )
        if done.status != ProfileImport.Status.DONE:
            raise CommandError(f"import {done.pk} {done.status}")


def generate(path: Path, count: int, *, seed: int = 4) -> None:
    """A realistic contact export: emails, phones in mixed formats, a CRM id, attributes, consent; streamed."""
    rng = random.Random(seed)
    cities = ["Paris", "Lyon", "London", "Berlin", "Madrid", "Zürich", "Köln", "Québec"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "phone", "crm_id", "first_name", "city", "points", "signed_up", "newsletter"])
        for n in range(count):
            phone = f"06 {n // 1000000 % 100:02d} {n // 10000 % 100:02d} {n // 100 % 100:02d} {n % 100:02d}"
            writer.writerow(
                [
                    f"person{n}@example.com",
                    phone if n % 3 else f"+33 7 5{n % 10000000:07d}",
                    f"C{n:08d}",
                    f"Name{n}",
                    rng.choice(cities),
                    rng.randint(0, 5000),
                    f"20{rng.randint(10, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice(["yes", "no", ""]),
                ]
            )
