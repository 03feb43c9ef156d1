"""Test-only stand-in for pySendMail's sendMail.py (https://github.com/scaidermern/pySendMail).

Written for pyNetConnMon's tests from a description of the behaviour pyNetConnMon relies on; it
holds none of pySendMail's code. Only the module interface is mirrored, not its command line.

- `pySendMail()` reads `sendMailConfig.json` from the folder holding this file, in the locale's
  encoding (open() with none named, as the original does); on any failure it prints
  `Could not parse config file: <error>` and calls `sys.exit(1)`.
- `sendInternal()` raises on every failure (smtplib.SMTPException, OSError, KeyError).
- `send()` swallows every failure and returns None; when `retry` is true it retries every second
  (the original retries forever; this stand-in stops after RETRY_LIMIT tries so no test can hang).

Like the original, no SSL context is passed, so the server certificate is not verified.
"""
import json
import os
import smtplib
import sys
import time
from email.message import EmailMessage

RETRY_LIMIT = 300


class pySendMail:  # noqa: N801 (the original class name)
    def __init__(self):
        self.subject = 'pySendMail'
        self.content = 'Hello from pySendMail'
        self.file = None
        self.attach = None
        self.retry = False
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'sendMailConfig.json')
        try:
            with open(path) as f:   # in the locale's encoding, as the original
                self.config = json.load(f)
        except Exception as e:
            print('Could not parse config file: %s' % e)
            sys.exit(1)

    def sendInternal(self):  # noqa: N802
        mail = self.config['mail']
        smtp = mail['smtp']
        msg = EmailMessage()
        msg['From'] = mail['from']
        msg['To'] = mail['to']
        msg['Subject'] = self.subject
        msg.set_content(self.content)
        timeout = smtp['timeout'] or None  # 0 means no timeout
        if smtp['tls']:
            server = smtplib.SMTP_SSL(smtp['server'], smtp['port'], timeout=timeout)
        else:
            server = smtplib.SMTP(smtp['server'], smtp['port'], timeout=timeout)
        try:
            if not smtp['tls']:
                server.starttls()
            server.login(smtp['user'], smtp['password'])
            server.send_message(msg)
            server.quit()
        finally:
            server.close()

    def send(self):
        for _ in range(RETRY_LIMIT):
            try:
                self.sendInternal()
                return
            except smtplib.SMTPAuthenticationError as e:
                print('Authentication failed: %s' % e)
                return
            except Exception as e:
                print('Sending mail failed: %s' % e)
                if not self.retry:
                    return
                time.sleep(1)
