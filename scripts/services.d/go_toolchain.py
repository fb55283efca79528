#!/usr/bin/env python3
"""Fetch an official Go toolchain from the Go module proxy (standard library only).

Usage:
  go_toolchain.py VERSION DEST
  e.g. go_toolchain.py 1.24.13 .cache/services/go-toolchain/go1.24.13

The Go project publishes every release as the module ``golang.org/toolchain`` at version
``v0.0.1-go<VERSION>.<GOOS>-<GOARCH>``; this is what ``GOTOOLCHAIN`` downloads. Only the
module proxy is needed (go.dev need not be reachable). The proxy is the first URL entry of
$GOPROXY (or Go's default proxy). The zip is checked against the module hash
(go.sum ``h1:``) pinned below when there is one, unpacked into DEST (atomically: DEST only
appears once complete) with the executable bits Go's own toolchain switch restores (module
zips carry no file modes), and ``DEST/bin/go version`` must name VERSION.
"""

import base64
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile

# go.sum hashes of golang.org/toolchain module versions, as `go mod download -json` reports
# them. A version/platform not listed here is accepted on first use (over HTTPS) and its
# hash printed, so that it can be pinned.
PINNED = {
    "v0.0.1-go1.24.13.linux-amd64": "h1:5sgfUhn9QCgVl4UYj32GrIYFHI3bi2UX55tNfupXwxc=",
}

DEFAULT_PROXY = "https://proxy.golang.org"
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def log(message: str) -> None:
    print(f"[go] {message}", file=sys.stderr, flush=True)


def proxy_base() -> str:
    """The first module-proxy URL in $GOPROXY (entries split on ',' and '|')."""
    raw = os.environ.get("GOPROXY", "").strip()
    if not raw:
        return DEFAULT_PROXY
    for entry in raw.replace("|", ",").split(","):
        entry = entry.strip()
        if entry == "off":
            raise SystemExit("[go] GOPROXY=off: cannot download the Go toolchain")
        if entry.startswith(("https://", "http://", "file://")):
            return entry.rstrip("/")
    raise SystemExit(f"[go] GOPROXY={raw!r} names no module proxy URL; set GOPROXY={DEFAULT_PROXY}")


def module_version(version: str) -> str:
    system = platform.system().lower()
    arch = ARCHES.get(platform.machine().lower())
    if system != "linux" or arch is None:
        raise SystemExit(f"[go] no Go toolchain for {platform.system()}/{platform.machine()} here")
    return f"v0.0.1-go{version}.{system}-{arch}"


def download(url: str, target: str) -> None:
    log(f"downloading {url}")
    try:
        # file:// is allowed on purpose: GOPROXY may name a local module mirror.
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"[go] download failed: {url}: {exc}") from None


def module_hash(archive: zipfile.ZipFile) -> str:
    """The go.sum ``h1:`` hash of a module zip (golang.org/x/mod/sumdb/dirhash.Hash1)."""
    summary = hashlib.sha256()
    for name in sorted(info.filename for info in archive.infolist() if not info.is_dir()):
        if "\n" in name:
            raise SystemExit(f"[go] bad file name in module zip: {name!r}")
        digest = hashlib.sha256(archive.read(name)).hexdigest()
        summary.update(f"{digest}  {name}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


def is_executable(relative: str) -> bool:
    """Go's toolchain switch makes bin/* and pkg/tool/<os_arch>/* executable."""
    parts = relative.split("/")
    return (len(parts) == 2 and parts[0] == "bin") or (
        len(parts) == 4 and parts[0] == "pkg" and parts[1] == "tool"
    )


def unpack(archive: zipfile.ZipFile, prefix: str, dest: str) -> None:
    for info in archive.infolist():
        if info.is_dir():
            continue
        if not info.filename.startswith(prefix):
            raise SystemExit(f"[go] unexpected path in module zip: {info.filename}")
        relative = info.filename[len(prefix) :]
        path = os.path.normpath(os.path.join(dest, relative))
        if relative.startswith("/") or not path.startswith(dest + os.sep):
            raise SystemExit(f"[go] unsafe path in module zip: {info.filename}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with archive.open(info) as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        mode = (info.external_attr >> 16) & 0o777
        if is_executable(relative) or mode & 0o111:
            os.chmod(path, 0o755)  # noqa: S103 - the toolchain's executables


def main(argv: "list[str]") -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    version, dest = argv[1].removeprefix("go"), os.path.abspath(argv[2])
    modver = module_version(version)
    url = f"{proxy_base()}/golang.org/toolchain/@v/{modver}.zip"
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".go-toolchain-", dir=parent)
    try:
        zip_path = os.path.join(work, "toolchain.zip")
        download(url, zip_path)
        with zipfile.ZipFile(zip_path) as archive:
            got = module_hash(archive)
            want = PINNED.get(modver)
            if want is None:
                log(f"no pinned hash for {modver}; downloaded module hash is {got}")
            elif got != want:
                raise SystemExit(f"[go] {modver}: module hash {got} does not match pinned {want}")
            unpacked = os.path.join(work, "go")
            os.makedirs(unpacked)
            unpack(archive, f"golang.org/toolchain@{modver}/", unpacked)
        os.unlink(zip_path)
        go = os.path.join(unpacked, "bin", "go")
        env = {k: v for k, v in os.environ.items() if k not in ("GOROOT", "GOTOOLCHAIN")}
        env["GOTOOLCHAIN"] = "local"
        out = subprocess.run(  # noqa: S603 - the go we just unpacked
            [go, "version"], capture_output=True, text=True, env=env, check=False
        )
        if out.returncode != 0 or f"go{version} " not in out.stdout + " ":
            raise SystemExit(f"[go] {go} version failed: {out.stdout}{out.stderr}")
        log(out.stdout.strip())
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.rename(unpacked, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(os.path.join(dest, "bin", "go"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
