"""CPU of reading one GitHub answer, alone (issue 17): what the executor's thread does with a
create's answer once its bytes arrive.

One real answer is taken from the fake GitHub (a create, with the headers GitHub sends);
then, `--n` times, its bytes are written into a socket pair and read back the way a create
reads them: `syncd.http_door.read_answer` (httptools), the governor's rate-limit headers,
the answer's headers as PyGithub's Requester takes them, and the body as text
(connectors/github/transport.py `Answer`). Printed: microseconds per answer (the median of
`--rounds` timings).

To compare two checkouts, run this script with the other one first on PYTHONPATH (the
checkout holding the script is only a fallback on the path):

    python benchmarks/answer_read.py [--n 20000] [--rounds 5] [--github-headers]
    PYTHONPATH=/path/to/other/checkout python benchmarks/answer_read.py
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: see above

from connectors.github.transport import Answer
from syncd.http_door import rate_limit_headers, read_answer, request_bytes

TOKEN = "bench-github-token"
REPO = "bench/answers"
# Headers api.github.com sends with a create's answer that the fake leaves out (values
# shortened): `--github-headers` adds them, for an answer of GitHub's size.
GITHUB_HEADERS = [
    ("Cache-Control", "private, max-age=60, s-maxage=60"),
    ("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP"),
    ("ETag", '"c2b6f0a8e1d34b7f9a0c5e6d7f8a9b0c"'),
    ("X-OAuth-Scopes", "repo"),
    ("X-Accepted-OAuth-Scopes", ""),
    ("github-authentication-token-expiration", "2027-06-01 00:00:00 UTC"),
    ("X-GitHub-Media-Type", "github.v3; format=json"),
    ("x-github-api-version-selected", "2022-11-28"),
    ("Access-Control-Expose-Headers", "ETag, Link, Location, Retry-After, X-GitHub-OTP"),
    ("Access-Control-Allow-Origin", "*"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubdomains; preload"),
    ("X-Frame-Options", "deny"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-XSS-Protection", "0"),
    ("Referrer-Policy", "origin-when-cross-origin, strict-origin-when-cross-origin"),
    ("Content-Security-Policy", "default-src 'none'"),
    ("X-GitHub-Request-Id", "C0DE:1A2B3C:4D5E6F:7A8B9C:6750F00D"),
]


def github_answer() -> bytes:
    """The bytes of the fake GitHub's answer to one issue create."""
    from urllib.parse import urlsplit

    from syncd_sandbox.github.fake import FakeGitHub

    fake = FakeGitHub(token=TOKEN).start()
    port = urlsplit(fake.base_url).port or 80
    try:
        fake.add_repo(REPO)
        body = b'{"title": "Bench", "body": "answer bytes"}'
        request = request_bytes(
            "POST",
            f"/repos/{REPO}/issues",
            f"127.0.0.1:{port}",
            body,
            {"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received or not _complete(received):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        return received
    finally:
        fake.stop()


def with_github_headers(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    extra = b"".join(f"\r\n{name}: {value}".encode() for name, value in GITHUB_HEADERS)
    return head + extra + b"\r\n\r\n" + body


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def time_reads(raw: bytes, n: int) -> float:
    """Seconds per answer over `n` reads of `raw`."""
    ours, theirs = socket.socketpair()
    try:
        started = time.perf_counter()
        for _ in range(n):
            theirs.sendall(raw)
            status, headers, data, _ = read_answer(ours)
            rate_limit_headers(headers)
            answer = Answer(status, headers, data)
            {name.lower(): value for name, value in answer.getheaders()}
            answer.read()
        return (time.perf_counter() - started) / n
    finally:
        ours.close()
        theirs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="answers read per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--github-headers",
        action="store_true",
        help="add the headers api.github.com sends that the fake leaves out",
    )
    args = parser.parse_args()
    raw = github_answer()
    if args.github_headers:
        raw = with_github_headers(raw)
    headers = raw.partition(b"\r\n\r\n")[0].count(b"\r\n")
    timings = [time_reads(raw, args.n) for _ in range(args.rounds)]
    print(
        f"answer read: {len(raw):,} bytes, {headers} headers; "
        f"{statistics.median(timings) * 1e6:.1f} us per answer "
        f"(median of {args.rounds} rounds of {args.n:,}; "
        f"min {min(timings) * 1e6:.1f}, max {max(timings) * 1e6:.1f})"
    )


if __name__ == "__main__":
    main()
