"""Size caps for every tar archive the daemon parses (image load's outer archive, layers, import,
cp): tarfile reads pax, GNU long-name and Solaris extended headers whole into memory before any
caller sees the member, so a 1.5 GB pax header in an archive drove the daemon to 4.7 GB RSS (issue 17).
`CappedTarInfo` refuses such a header from its size field, before reading it; `MAX_MEMBERS` bounds
the member list a seekable archive's parse keeps in memory."""

from __future__ import annotations

import tarfile

MAX_META_HEADER = 1 << 20  # pax / GNU long-name headers: real ones are a few hundred bytes
MAX_MEMBERS = 1_000_000  # members of an outer (image load) archive, whose list is kept in memory

_META = {
    tarfile.GNUTYPE_LONGNAME: "GNU long-name header",
    tarfile.GNUTYPE_LONGLINK: "GNU long-link header",
    tarfile.XHDTYPE: "pax extended header",
    tarfile.XGLTYPE: "pax global header",
    tarfile.SOLARIS_XHDTYPE: "Solaris extended header",
}


class HeaderTooLarge(tarfile.HeaderError):
    """An extended header larger than MAX_META_HEADER (the message names it and its offset)."""


class CappedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses huge extended headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        kind = _META.get(self.type)
        if kind is not None and self.size > MAX_META_HEADER:
            raise HeaderTooLarge(
                f"{kind} {self.name[:100]!r} at offset {self.offset} is {self.size} bytes, "
                f"more than the maximum of {MAX_META_HEADER}"
            )
        result: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return result


def members(tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """tf.getmembers(), refusing an archive of more than MAX_MEMBERS entries."""
    out: list[tarfile.TarInfo] = []
    while (m := tf.next()) is not None:
        out.append(m)
        if len(out) > MAX_MEMBERS:
            raise tarfile.TarError(f"more than {MAX_MEMBERS} members")
    return out
