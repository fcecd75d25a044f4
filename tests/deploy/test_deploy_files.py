"""What can be checked of the container files without a Docker engine, and the set-up commands."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line.strip() and not line.startswith("#")
    ]


def env_example_names() -> set[str]:
    return set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


class TestDockerfile:
    def test_metrics_are_shared_between_workers_in_a_folder_no_build_step_makes(self):
        steps = dockerfile_instructions()
        metrics = next(i for i, (op, arg) in enumerate(steps) if op == "ENV" and "PROMETHEUS_MULTIPROC_DIR=" in arg)
        last_run = max(i for i, (op, _) in enumerate(steps) if op == "RUN")
        user = max(i for i, (op, _) in enumerate(steps) if op == "USER")

        # Set after the build steps and the USER: root never makes the folder the server writes to.
        assert last_run < metrics and user < metrics

    def test_slim_python_311_base(self):
        assert dockerfile_instructions()[0] == ("FROM", "python:3.11-slim")

    def test_requirements_installed_before_the_source_is_copied(self):
        steps = dockerfile_instructions()
        copy_requirements = steps.index(("COPY", "requirements.txt ."))
        install = next(i for i, (op, arg) in enumerate(steps) if op == "RUN" and "-r requirements.txt" in arg)
        copy_source = steps.index(("COPY", ". ."))

        assert copy_requirements < install < copy_source

    def test_runs_as_a_non_root_user(self):
        users = [arg for op, arg in dockerfile_instructions() if op == "USER"]

        assert users and users[-1] not in ("root", "0")

    def test_starts_gunicorn_after_the_index_command_which_exists(self):
        command = [arg for op, arg in dockerfile_instructions() if op == "CMD"][-1]

        assert "manage.py ensure_indexes" in command and "exec gunicorn" in command
        assert "manage.py train_model --if-no-active" in command
        assert (ROOT / "ml/management/commands/train_model.py").exists()
        assert not any(line.startswith("data/") for line in (ROOT / ".dockerignore").read_text().split())
        assert (ROOT / "modelops/management/commands/ensure_indexes.py").exists()
        config = re.search(r"--config (\S+)", command).group(1)
        assert (ROOT / config).exists()
        assert "estimator_project.wsgi" in command and (ROOT / "estimator_project/wsgi.py").exists()

    def test_dockerignore_keeps_secrets_and_the_venv_out(self):
        ignored = (ROOT / ".dockerignore").read_text().split()

        assert {".env", ".venv", ".git"} <= set(ignored)


class TestCompose:
    def compose(self) -> dict:
        return yaml.safe_load((ROOT / "docker-compose.yml").read_text())

    def test_api_waits_for_a_healthy_mongo_7(self):
        services = self.compose()["services"]

        assert services["db"]["image"] == "mongo:7"
        assert "mongosh" in " ".join(services["db"]["healthcheck"]["test"])
        assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"

    def test_data_is_on_a_named_volume(self):
        compose = self.compose()
        volume = compose["services"]["db"]["volumes"][0].split(":")[0]

        assert volume in compose["volumes"]

    def test_the_proxy_serves_port_8000_and_waits_for_a_ready_api(self):
        services = self.compose()["services"]

        assert "8000:8000" in services["proxy"]["ports"]
        assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"
        mount = services["proxy"]["volumes"][0].split(":")
        assert (ROOT / mount[0]).exists() and mount[1].startswith("/etc/nginx/")

    def test_api_replicas_publish_no_host_port_so_they_can_scale(self):
        api = self.compose()["services"]["api"]

        assert "ports" not in api and api["expose"] == ["8000"]
        assert api["build"] == "."

    def test_api_healthcheck_asks_the_ready_endpoint_which_exists(self):
        from django.urls import resolve

        test = " ".join(self.compose()["services"]["api"]["healthcheck"]["test"])
        path = re.search(r"127\.0\.0\.1:8000(/[^'\"]+)", test).group(1)

        assert path == "/health/ready" and resolve(path).url_name == "health-ready"

    def test_api_uses_the_db_service_with_keys_required_behind_one_proxy(self):
        environment = self.compose()["services"]["api"]["environment"]

        assert environment["MONGO_URI"].startswith("mongodb://db:27017/")
        assert environment["ALLOW_ANONYMOUS_WRITES"] == "false"
        assert environment["NUM_PROXIES"] == "1"

    def test_every_environment_name_is_a_setting_the_service_reads(self):
        names = set(self.compose()["services"]["api"]["environment"])

        assert names <= env_example_names(), names - env_example_names()

    def test_secret_key_is_required_not_defaulted(self):
        assert self.compose()["services"]["api"]["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")

    def test_shows_how_to_use_a_replica_set(self):
        assert "replicaSet=" in (ROOT / "docker-compose.yml").read_text()


def merged(base: dict, override: dict) -> dict:
    """compose's merge of an override file (``-f base -f override``): mappings merge, other values are replaced."""
    result = dict(base)
    for key, value in override.items():
        result[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return result


class TestReplicaSetExample:
    """docker-compose.replica-set.yml: the members it runs, the set rs.initiate makes and the URI the API
    is given name the same hosts and set, and the API starts only once the set has a primary."""

    def files(self) -> tuple[dict, dict, str]:
        override = (ROOT / "docker-compose.replica-set.yml").read_text()
        return yaml.safe_load((ROOT / "docker-compose.yml").read_text()), yaml.safe_load(override), override

    def members(self, services: dict) -> dict[str, str]:
        """Service name -> its --replSet, for the services that run mongod as a replica set member."""
        found = {}
        for name, service in services.items():
            command = service.get("command") or []
            if "mongod" in command and "--replSet" in command:
                found[name] = command[command.index("--replSet") + 1]
        return found

    def test_the_uri_names_every_member_and_the_set_rs_initiate_makes(self):
        from pymongo.uri_parser import parse_uri

        base, override, _ = self.files()
        services = merged(base, override)["services"]
        members = self.members(services)
        uri = parse_uri(services["api"]["environment"]["MONGO_URI"])
        script = " ".join(services["db-init"]["command"])
        initiated = re.search(r'rs\.initiate\(\{\s*_id: "(\w+)",\s*members: \[(.*?)\]', script, re.DOTALL)
        hosts = re.findall(r'host: "([\w.-]+:\d+)"', initiated.group(2))

        assert len(members) == 3 and set(members.values()) == {initiated.group(1)} == {uri["options"]["replicaSet"]}
        assert sorted(f"{host}:{port}" for host, port in uri["nodelist"]) == sorted(hosts)
        assert sorted(host.split(":")[0] for host in hosts) == sorted(members)
        assert uri["database"] == parse_uri(base["services"]["api"]["environment"]["MONGO_URI"])["database"]

    def test_the_api_starts_once_every_member_answers_and_the_set_has_a_primary(self):
        base, override, _ = self.files()
        services = merged(base, override)["services"]
        init = services["db-init"]

        assert {name: dep["condition"] for name, dep in init["depends_on"].items()} == dict.fromkeys(
            self.members(services), "service_healthy"
        )
        assert init["restart"] == "no" and "quit(1)" in init["command"][-1]  # no primary in time: it fails
        assert 'stateStr === "PRIMARY"' in init["command"][-1]
        assert services["api"]["depends_on"]["db-init"]["condition"] == "service_completed_successfully"
        assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"  # kept from the base file

    def test_each_member_is_mongo_7_with_a_healthcheck_and_its_own_volume(self):
        base, override, _ = self.files()
        compose = merged(base, override)
        services = compose["services"]
        volumes = [services[name]["volumes"][0].split(":")[0] for name in self.members(services)]

        assert all(services[name]["image"] == "mongo:7" for name in self.members(services))
        assert all("mongosh" in " ".join(services[name]["healthcheck"]["test"]) for name in self.members(services))
        assert len(set(volumes)) == 3 and set(volumes) <= set(compose["volumes"])

    def test_its_settings_are_settings_the_service_reads_with_a_valid_read_preference(self):
        from django.conf import settings

        from tests.deploy import topology

        base, override, _ = self.files()
        environment = merged(base, override)["services"]["api"]["environment"]
        preference = topology.interpolate(environment["MONGO_READ_PREFERENCE"], {})

        assert set(environment) <= env_example_names(), set(environment) - env_example_names()
        assert preference == settings.MONGO_READ_PREFERENCE == "primaryPreferred"

    def test_the_compose_file_says_how_to_start_it(self):
        assert "-f docker-compose.yml -f docker-compose.replica-set.yml up" in (ROOT / "docker-compose.yml").read_text()
        _, _, text = self.files()
        assert "docker compose -f docker-compose.yml -f docker-compose.replica-set.yml up" in text


class TestProxyConfig:
    def test_forwards_to_every_api_replica_with_the_client_address(self):
        conf = (ROOT / "deploy/nginx.conf").read_text()

        assert "listen 8000;" in conf
        assert "set $api http://api:8000;" in conf and "proxy_pass $api;" in conf
        assert "resolver 127.0.0.11" in conf  # re-resolves api as replicas change
        assert "X-Forwarded-For" in conf and "X-Request-ID" in conf

    def test_passes_the_clients_host_with_its_port_and_a_tls_terminators_scheme(self):
        conf = (ROOT / "deploy/nginx.conf").read_text()

        assert "proxy_set_header Host $http_host;" in conf  # $host drops the port
        assert re.search(r"map \$http_x_forwarded_proto \$(\w+) \{[^}]*default\s+\$scheme;", conf)
        assert "proxy_set_header X-Forwarded-Proto $forwarded_proto;" in conf
        retries = re.search(r"^\s*proxy_next_upstream ([^;]*);", conf, re.MULTILINE).group(1)
        assert "non_idempotent" not in retries.split()  # a POST is never sent to a second replica


class TestHttps:
    def test_the_compose_healthcheck_is_answered_in_plain_http_under_https(self):
        from django.conf import settings

        test = " ".join(
            yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]["healthcheck"]["test"]
        )
        path = re.search(r"127\.0\.0\.1:8000/([^'\"]+)", test).group(1)

        assert any(re.search(pattern, path) for pattern in settings.SECURE_REDIRECT_EXEMPT)
        assert not any(re.search(pattern, "estimations") for pattern in settings.SECURE_REDIRECT_EXEMPT)

    def test_compose_passes_https_to_the_api(self):
        environment = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]["environment"]

        assert environment["HTTPS"] == "${HTTPS:-false}"


class TestSetUpCommands:
    def test_makefile_has_run_and_test_and_ci_calls_make_test(self):
        makefile = (ROOT / "Makefile").read_text()

        assert re.search(r"^run:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
        assert "make test" in (ROOT / ".ci/run").read_text()

    def test_readme_shows_both_commands(self):
        readme = (ROOT / "README.md").read_text()

        assert "make run" in readme and "make test" in readme
