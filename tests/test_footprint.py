"""What `tidings serve` holds resident: libraries only the CLI or other setups need stay unimported,
and argon2's working memory goes back to the system once a check is done."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Never imported by the server on its embedded default: Alembic (migrations run in a child, and
# only on a database behind), httpx and the CLI libraries its package imports (only HTTP provider
# connectors need it), redis-py (no Redis configured), the phonenumbers geocoder.
NOT_IMPORTED_BY_SERVE = ("alembic", "mako", "httpx", "rich", "pygments", "redis", "phonenumbers.geocoder")


def test_the_server_imports_none_of_what_only_other_setups_need() -> None:
    probe = (
        "import sys; import tidings.cli.serve, tidings.api.app, tidings.runtime\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    imported = set(done.stdout.split())
    for name in NOT_IMPORTED_BY_SERVE:
        found = sorted(module for module in imported if module == name or module.startswith(name + "."))
        assert not found, f"the server imports {found}"


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's allocator only"
)
def test_secret_checks_in_threads_leave_no_working_memory_behind() -> None:
    """Unless glibc is told otherwise (tidings/allocator.py), each thread that ever checked a
    secret keeps argon2's 19 MiB: here checks two at a time, three rounds."""
    probe = (
        "import re, asyncio\n"
        "from tidings.allocator import return_large_blocks_when_freed\n"
        "from tidings.auth.secret_hashing import hash_secret, verify_secret\n"
        "def rss(): return int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])\n"
        "return_large_blocks_when_freed()  # as serve does\n"
        "async def main():\n"
        "    secret_hash = await asyncio.to_thread(hash_secret, 'secret')\n"
        "    before = rss()\n"
        "    for _ in range(3):\n"
        "        await asyncio.gather(*(asyncio.to_thread(verify_secret, secret_hash, 'secret') for _ in range(2)))\n"
        "    print(rss() - before)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    grown_kib = int(done.stdout)
    assert grown_kib < 8 * 1024  # one check's working memory is 19 MiB
