"""Volumes: docker's `local` driver laid out as docker does (`<root>/volumes/<name>/_data`).

    names.py   volume names (docker's rule, random anonymous names, the anonymous label)
    local.py   the local driver's options (type/device/o) and the mounts they make
    store.py   the volume store: create, list, remove, prune, recovery, mount reference counts
    copyup.py  docker's copy-up: a new volume gets the image's content at its mount point
"""
