"""Networks of containers, as a compose project has, made of Linux network namespaces (needs root).

``Network`` is a bridge in a namespace of its own; ``Network.attach`` gives a container its own
namespace (its loopback, its ports: every container can listen on 8000) with an ``eth0`` on the
bridge and an address of its own. Nothing is added to this machine's own network.

This process reaches into a namespace with ``in_netns`` (a socket made there stays there, and can be
used from any thread): ``request`` sends HTTP from inside one, ``StoreRelay`` listens inside one as the
``db`` service and passes the MongoDB wire protocol on to the test store, and ``DnsResponder`` answers
service names on 127.0.0.11:53 as the engine's DNS does.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import socket
import struct
import subprocess
import threading
import uuid
from dataclasses import dataclass, field

import bson

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def in_netns(name: str, function):
    """function() run on a thread that has joined network namespace ``name``; its result or exception."""
    outcome: dict = {}

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {name}")
            finally:
                os.close(fd)
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"netns-{name}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass
class Endpoint:
    netns: str
    address: str
    hostname: str


class Network:
    """A bridge network 172.30.0.0/24 (a namespace of its own), and containers' namespaces on it."""

    def __init__(self, label: str = "net"):
        self.name = f"dt-{label}-{uuid.uuid4().hex[:6]}"  # `ip netns list | grep ^dt-`: what a killed run left
        self.namespaces: list[str] = []
        self.endpoints: list[Endpoint] = []

    def create(self) -> Network:
        self._add(self.name)
        ip("-n", self.name, "link", "add", "br0", "type", "bridge")
        ip("-n", self.name, "link", "set", "br0", "up")
        return self

    def _add(self, namespace: str) -> None:
        ip("netns", "add", namespace)
        self.namespaces.append(namespace)
        ip("-n", namespace, "link", "set", "lo", "up")

    def attach(self, hostname: str) -> Endpoint:
        number = len(self.endpoints) + 2
        namespace = f"{self.name}-{number}"
        self._add(namespace)
        ip("-n", self.name, "link", "add", f"v{number}", "type", "veth", "peer", "name", "eth0", "netns", namespace)
        ip("-n", self.name, "link", "set", f"v{number}", "master", "br0", "up")
        address = f"172.30.0.{number}"
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        endpoint = Endpoint(namespace, address, hostname)
        self.endpoints.append(endpoint)
        return endpoint

    def remove(self) -> None:
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
        self.namespaces.clear()


def request(
    netns: str, method: str, url: str, body: bytes | str | None = None, headers: dict | None = None, timeout: float = 15
) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one HTTP request sent from inside ``netns``; redirects are not followed."""
    parsed = http.client.urlsplit(url)
    host, port = parsed.hostname or "localhost", parsed.port or 80
    sock = in_netns(netns, lambda: socket.create_connection((host, port), timeout=timeout))
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    connection.sock = sock
    try:
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        data = body.encode() if isinstance(body, str) else body
        connection.request(method, path or "/", body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def request_json(netns: str, method: str, url: str, payload=None, headers: dict | None = None, timeout: float = 15):
    """(status, parsed JSON body or None, headers)."""
    body = json.dumps(payload) if payload is not None else None
    status, response_headers, raw = request(
        netns, method, url, body, {"Content-Type": "application/json", **(headers or {})}, timeout
    )
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, parsed, response_headers


# --- The db service: a relay to the test store ---------------------------------------------------

OP_MSG = 2013


@dataclass
class StoreRelay:
    """Listens as ``db:27017`` inside a namespace and relays the MongoDB wire protocol to the test store.

    Two adaptations, on the client's OP_MSG commands only (all else passes untouched):
    - ``databases`` renames databases (the compose file's ``estimations``), so a test has its own on a
      shared server and never touches a real database of that name (TEST_MONGO_URI);
    - with ``nx_27017``, a compound index that ends in ``_id`` is created without ``_id``: nx-27017 takes
      it and then fails every insert into the collection (docs/development.md), where MongoDB serves it.
    """

    netns: str
    address: str
    upstream: tuple[str, int]
    databases: dict[str, str]
    nx_27017: bool
    port: int = 27017
    rewritten: list[str] = field(default_factory=list)

    def start(self) -> StoreRelay:
        def listen():
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((self.address, self.port))
            server.listen(64)
            return server

        self._server = in_netns(self.netns, listen)
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="store-relay").start()
        return self

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _read(sock: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while True:
                header = self._read(client, 16)
                length, request_id, response_to, opcode = struct.unpack("<iiii", header)
                message = header + self._read(client, length - 16)
                if opcode == OP_MSG:
                    reply = self._reply_instead(message)
                    if reply is not None:  # answered here, never sent to the store
                        section = struct.pack("<I", 0) + b"\0" + bson.encode(reply)
                        client.sendall(struct.pack("<iiii", 16 + len(section), 1, request_id, OP_MSG) + section)
                        continue
                    message = self._adapt(message)
                upstream.sendall(message)
        except (OSError, ConnectionError):
            pass
        finally:
            for sock in (client, upstream):
                sock.close()

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                sock.close()

    def _reply_instead(self, message: bytes) -> dict | None:
        """A reply to send the client in the store's place (a subclass's fault), or None to relay it."""
        return None

    def _adapt(self, message: bytes) -> bytes:
        _, request_id, response_to, opcode = struct.unpack("<iiii", message[:16])
        (flags,) = struct.unpack("<I", message[16:20])
        if flags & 1:  # checksumPresent: left as it is
            return message
        sections = message[20:]
        if sections[0] != 0:
            return message
        size = struct.unpack("<i", sections[1:5])[0]
        body = bson.decode(sections[1 : 1 + size])
        changed = False
        if body.get("$db") in self.databases:
            body["$db"] = self.databases[body["$db"]]
            changed = True
        if self.nx_27017 and "createIndexes" in body:
            for index in body.get("indexes", []):
                keys = index["key"]
                if len(keys) > 1 and "_id" in keys:
                    index["key"] = {name: direction for name, direction in keys.items() if name != "_id"}
                    self.rewritten.append(f"{body['createIndexes']}.{index.get('name')}")
                    changed = True
        if not changed:
            return message
        encoded = bson.encode(body)
        rest = sections[1 + size :]
        payload = struct.pack("<I", flags) + b"\0" + encoded + rest
        return struct.pack("<iiii", 16 + len(payload), request_id, response_to, opcode) + payload

    def stop(self) -> None:
        self._closed = True
        self._server.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


# --- The engine's DNS ----------------------------------------------------------------------------


class DnsResponder:
    """Answers A queries for service names (every replica's address) on 127.0.0.11:53 in a namespace."""

    def __init__(self, netns: str, records: dict[str, list[str]]):
        self.netns = netns
        self.records = records
        self.queries: list[str] = []

    def start(self) -> DnsResponder:
        def bind():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.11", 53))
            return sock

        self._socket = in_netns(self.netns, bind)
        threading.Thread(target=self._serve, daemon=True, name="dns").start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                query, client = self._socket.recvfrom(512)
            except OSError:
                return
            try:
                self._socket.sendto(self._answer(query), client)
            except (OSError, IndexError, struct.error):
                continue

    def _answer(self, query: bytes) -> bytes:
        ident, _flags, _qd = struct.unpack("!HHH", query[:6])
        labels, offset = [], 12
        while query[offset]:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode().lower())
            offset += 1 + length
        qtype, _qclass = struct.unpack("!HH", query[offset + 1 : offset + 5])
        question = query[12 : offset + 5]
        name = ".".join(labels)
        self.queries.append(name)
        addresses = self.records.get(name)
        if addresses is None:
            return struct.pack("!HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        answers = [] if qtype != 1 else addresses
        out = struct.pack("!HHHHHH", ident, 0x8180, 1, len(answers), 0, 0) + question
        for address in answers:
            out += struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(address)
        return out

    def stop(self) -> None:
        self._socket.close()
