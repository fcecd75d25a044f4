from django.core.management.base import BaseCommand

from core.api_keys import SCOPES, api_key_create
from core.audit import command_actor
from core.commands import database_errors_as_command_errors, require_the_servers_store


class Command(BaseCommand):
    help = "Create an API key and print it once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="who or what uses the key (shown in logs and audits)")
        parser.add_argument("--scope", required=True, choices=SCOPES, help="write: create estimations; admin: all")

    def handle(self, *args, name: str, scope: str, **options):
        require_the_servers_store(
            "stored", "Use the admin key the server printed when it started: it can do all a write key can."
        )
        with database_errors_as_command_errors("Storing the key"):
            key = api_key_create(name=name, scope=scope, actor=command_actor())
        self.stdout.write(f"API key for '{name}' (scope {scope}). It is shown only now; store it safely:")
        self.stdout.write(key)
