#!/usr/bin/env python3
"""What the content library's format alone costs on a filesystem.

Replays, single-threaded and with no hashing, no temp names, no renames and
one syncfs at the end, only the namespace work a link-mode conversion of a
legacy tree cannot avoid (CONTENT_LIBRARY.md): per unique file a FileLib
folder, a hard link and a reference-list INI; per package a DataLib tree
with one INI per file, a DataLib INI and a PkgLib INI; then the legacy
files and folders removed. The dedup plan (SHA-256 of every file) is made
before the clock starts.

Prints wall and CPU seconds. CPU seconds halved is what this work alone
takes on 2 cores however well it is spread; add the hashing CPU (openssl
dgst's user time) for a floor under any converter of this format.

Usage: format_floor.py LEGACY WORKDIR   (LEGACY is consumed: files are removed)
"""
import ctypes
import hashlib
import os
import resource
import sys
import time


def plan(legacy):
    packages = []
    for pkg in sorted(os.listdir(legacy)):
        root = os.path.join(legacy, pkg)
        dirs, files = [], []
        for cur, subdirs, names in os.walk(root):
            rel = os.path.relpath(cur, root)
            if rel != ".":
                dirs.append(rel)
            for n in names:
                path = os.path.join(cur, n)
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                files.append((os.path.normpath(os.path.join(rel, n)), path,
                              os.path.getsize(path), h.hexdigest().upper()))
        packages.append((pkg, root, dirs, files))
    return packages


def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, text.encode())
    os.close(fd)


def replay(packages, lib):
    for d in ("PkgLib", "DataLib", "FileLib"):
        os.makedirs(os.path.join(lib, d))
    users = {}
    for pkg, _, _, files in packages:
        for _, path, size, digest in files:
            users.setdefault(digest, (path, size, []))[2].append(pkg + ".1")
    shards = set()
    for digest, (path, size, ids) in users.items():
        shard = os.path.join(lib, "FileLib", digest[:4])
        if digest[:4] not in shards:
            os.mkdir(shard)
            shards.add(digest[:4])
        os.link(path, os.path.join(shard, digest))
        write(os.path.join(shard, digest + ".INI"),
              "[File]\r\nSize=%d\r\n[Users]\r\n%s" % (size, "".join(i + "=\r\n" for i in ids)))
    for pkg, _, dirs, files in packages:
        top = os.path.join(lib, "DataLib", pkg + ".1")
        os.mkdir(top)
        for d in dirs:
            os.mkdir(os.path.join(top, d))
        for rel, _, size, digest in files:
            write(os.path.join(top, rel + ".INI"),
                  "[File]\r\nSize=%d\r\nTimeModified=133000000000000000\r\n"
                  "Attributes=20\r\nHash=%s\r\n" % (size, digest))
        write(top + ".INI", "[Content]\r\nHash=%s\r\n" % ("0" * 64))
        write(os.path.join(lib, "PkgLib", pkg + ".INI"),
              "[Packages]\r\n%s.1=\r\n[Info]\r\nVersion=1\r\n" % pkg)
    for _, root, dirs, files in packages:
        for _, path, _, _ in files:
            os.unlink(path)
        for d in sorted(dirs, key=len, reverse=True):
            os.rmdir(os.path.join(root, d))
        os.rmdir(root)
    fd = os.open(lib, os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
        raise OSError(ctypes.get_errno(), "syncfs")
    os.close(fd)
    return len(users), len(shards)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    legacy, work = sys.argv[1], sys.argv[2]
    packages = plan(legacy)
    os.sync()
    lib = os.path.join(work, "SCCMContentLib")
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    objects, shards = replay(packages, lib)
    t1, r1 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    files = sum(len(p[3]) for p in packages)
    print("format floor: %d packages, %d files, %d objects in %d FileLib folders: "
          "wall %.3f s, cpu %.3f s (user %.3f, sys %.3f)"
          % (len(packages), files, objects, shards, t1 - t0, cpu,
             r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))


if __name__ == "__main__":
    main()
