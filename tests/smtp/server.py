"""A real SMTP server for ashgate's password-recovery tests (aiosmtpd), started by
tests/testkit/src/smtp.rs.

Listens on 127.0.0.1 (a free port), requires AUTH (PLAIN or LOGIN) with the given username and
password before MAIL FROM (plain text is allowed on loopback: auth_require_tls=False), and
writes every accepted message as JSON (envelope, authenticated user, subject, decoded text and
HTML parts) to NNNN.json in the given directory; failed AUTH attempts are appended to
auth-failures.log there. Prints one JSON line {"port": N} when ready.

Usage: python3 server.py DIRECTORY USERNAME PASSWORD
"""

import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Authenticator:
    def __init__(self, directory: str, username: str, password: str) -> None:
        self.directory, self.username, self.password = directory, username, password

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            if login == self.username and auth_data.password.decode("utf-8", "replace") == self.password:
                return AuthResult(success=True, auth_data=login)
            with open(os.path.join(self.directory, "auth-failures.log"), "a", encoding="utf-8") as log:
                log.write(f"{mechanism} {login}\n")
        return AuthResult(success=False, handled=False)


class Store:
    def __init__(self, directory: str) -> None:
        self.directory, self.count = directory, 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
            "subject": str(message.get("subject", "")),
            "from": str(message.get("from", "")),
            "to": str(message.get("to", "")),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
        }
        self.count += 1
        final = os.path.join(self.directory, f"{self.count:04d}.json")
        partial = final + ".partial"
        with open(partial, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(partial, final)
        return "250 Message accepted for delivery"


def main() -> None:
    directory, username, password = sys.argv[1], sys.argv[2], sys.argv[3]
    port = free_port()
    controller = Controller(
        Store(directory),
        hostname="127.0.0.1",
        port=port,
        authenticator=Authenticator(directory, username, password),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
