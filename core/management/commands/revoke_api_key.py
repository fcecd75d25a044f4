from django.core.management.base import BaseCommand, CommandError

from core.api_keys import api_key_revoke
from core.audit import command_actor
from core.commands import database_errors_as_command_errors, require_the_servers_store


class Command(BaseCommand):
    help = "Revoke the API keys with this name: requests with them answer 401 from now on (recorded in /audit)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the name the key was created with (create_api_key --name)")

    def handle(self, *args, name: str, **options):
        require_the_servers_store("revoked", "The embedded store's keys end with the server: stopping it revokes them.")
        with database_errors_as_command_errors("Revoking"):
            revoked = api_key_revoke(name=name, actor=command_actor())
        if not revoked:
            raise CommandError(f"No valid API key is named '{name}'; nothing was revoked.")
        self.stdout.write(self.style.SUCCESS(f"Revoked {revoked} key(s) named '{name}'."))
