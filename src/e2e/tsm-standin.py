#!/usr/bin/python3
"""TEST-ONLY STAND-IN for the kernel's configfs-tsm report interface and the tdx_guest RTMR interface.

A FUSE file system (Debian's python3-fusepy) with the semantics of the kernel ABI
(Documentation/ABI/testing/configfs-tsm, Documentation/ABI/testing/sysfs-devices-virtual-misc-tdx_guest),
so that a real `veil run` process can be tested where no TEE exists. It is not evidence of anything:
outblob returns the RECORDED evidence given on the command line, which cannot bind the runtime's report data.

Layout under the mount point:
  tsm/report/                     mkdir <name> makes a report object, rmdir removes it
  tsm/report/<name>/inblob        WO, at most 64 bytes (sev_guest: exactly 64); each write bumps generation
  tsm/report/<name>/privlevel     WO, 0-3; each write bumps generation
  tsm/report/<name>/outblob       RO, the recorded evidence
  tsm/report/<name>/auxblob       RO, the recorded certificate table (sev_guest), else empty
  tsm/report/<name>/provider      RO, tdx_guest | sev_guest
  tsm/report/<name>/generation    RO, decimal
  tsm/report/<name>/privlevel_floor RO, 0
  tdx_guest/measurements/rtmr[0-3]:sha384  (--rtmr) RW: read 48 bytes; a 48-byte write extends
As in configfs, a write to an attribute takes effect when the file is closed (one write per open).

Usage: tsm-standin.py --provider tdx_guest|sev_guest --outblob FILE [--auxblob FILE] [--rtmr] MOUNTPOINT
"""
import argparse
import errno
import hashlib
import stat
import sys

from fusepy import FUSE, FuseOSError, Operations

WRITE_ONLY = {'inblob', 'privlevel'}
READ_ONLY = {'outblob', 'auxblob', 'provider', 'generation', 'privlevel_floor'}
RTMRS = ['rtmr%d:sha384' % i for i in range(4)]


class ReportObject:
    def __init__(self):
        self.generation = 0
        self.inblob = b''
        self.privlevel = 0


class StandIn(Operations):
    def __init__(self, provider, outblob, auxblob, rtmr):
        self.provider = provider
        self.outblob = outblob
        self.auxblob = auxblob
        self.rtmr = rtmr
        self.objects = {}
        self.rtmrs = [bytes(48) for _ in range(4)]
        self.pending = {}  # fh -> (path, bytearray) of writes not yet committed
        self.next_fh = 1

    # --- paths -------------------------------------------------------------------------------------------
    def parts(self, path):
        return [p for p in path.split('/') if p]

    def kind(self, path):
        p = self.parts(path)
        if p in ([], ['tsm'], ['tsm', 'report']):
            return ('dir', None, None)
        if self.rtmr and p in (['tdx_guest'], ['tdx_guest', 'measurements']):
            return ('dir', None, None)
        if self.rtmr and len(p) == 3 and p[:2] == ['tdx_guest', 'measurements'] and p[2] in RTMRS:
            return ('rtmr', RTMRS.index(p[2]), None)
        if len(p) >= 3 and p[:2] == ['tsm', 'report'] and p[2] in self.objects:
            if len(p) == 3:
                return ('object', p[2], None)
            if len(p) == 4 and p[3] in WRITE_ONLY | READ_ONLY:
                return ('attr', p[2], p[3])
        raise FuseOSError(errno.ENOENT)

    def content(self, name, attr):
        obj = self.objects[name]
        if attr == 'outblob':
            return self.outblob
        if attr == 'auxblob':
            return self.auxblob if self.provider == 'sev_guest' else b''
        if attr == 'provider':
            return (self.provider + '\n').encode()
        if attr == 'generation':
            return ('%d\n' % obj.generation).encode()
        if attr == 'privlevel_floor':
            return b'0\n'
        raise FuseOSError(errno.EACCES)

    # --- directories -------------------------------------------------------------------------------------
    def getattr(self, path, fh=None):
        kind, a, b = self.kind(path)
        if kind in ('dir', 'object'):
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if kind == 'rtmr':
            return dict(st_mode=stat.S_IFREG | 0o600, st_nlink=1, st_size=48)
        mode = 0o200 if b in WRITE_ONLY else 0o444
        size = 0 if b in WRITE_ONLY else len(self.content(a, b))
        return dict(st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=size)

    def readdir(self, path, fh):
        kind, a, _ = self.kind(path)
        p = self.parts(path)
        if p == []:
            names = ['tsm'] + (['tdx_guest'] if self.rtmr else [])
        elif p == ['tsm']:
            names = ['report']
        elif p == ['tsm', 'report']:
            names = sorted(self.objects)
        elif p == ['tdx_guest']:
            names = ['measurements']
        elif p == ['tdx_guest', 'measurements']:
            names = RTMRS
        elif kind == 'object':
            names = sorted(WRITE_ONLY | READ_ONLY)
        else:
            raise FuseOSError(errno.ENOTDIR)
        return ['.', '..'] + names

    def mkdir(self, path, mode):
        p = self.parts(path)
        if len(p) != 3 or p[:2] != ['tsm', 'report']:
            raise FuseOSError(errno.EPERM)
        if p[2] in self.objects:
            raise FuseOSError(errno.EEXIST)
        self.objects[p[2]] = ReportObject()

    def rmdir(self, path):
        kind, name, _ = self.kind(path)
        if kind != 'object':
            raise FuseOSError(errno.EPERM)
        del self.objects[name]

    # --- files -------------------------------------------------------------------------------------------
    def open(self, path, flags):
        self.kind(path)
        fh = self.next_fh
        self.next_fh += 1
        if flags & 3 != 0:  # O_WRONLY / O_RDWR
            self.pending[fh] = (path, bytearray())
        return fh

    def truncate(self, path, length, fh=None):
        self.kind(path)  # O_TRUNC on an attribute: nothing to truncate, as on configfs and sysfs

    def read(self, path, size, offset, fh):
        kind, a, b = self.kind(path)
        data = self.rtmrs[a] if kind == 'rtmr' else self.content(a, b)
        return data[offset:offset + size]

    def write(self, path, data, offset, fh):
        kind, a, b = self.kind(path)
        if kind == 'rtmr':
            # sysfs: "All writes must start at offset 0 and be 48 bytes in size."
            if offset != 0 or len(data) != 48:
                raise FuseOSError(errno.EINVAL)
            self.rtmrs[a] = hashlib.sha384(self.rtmrs[a] + data).digest()
            return len(data)
        if b not in WRITE_ONLY:
            raise FuseOSError(errno.EACCES)
        buf = self.pending.setdefault(fh, (path, bytearray()))[1]
        if b == 'inblob' and offset + len(data) > 64:
            raise FuseOSError(errno.EFBIG)
        buf[offset:offset + len(data)] = data
        return len(data)

    def release(self, path, fh):
        self.pending.pop(fh, None)
        return 0

    def flush(self, path, fh):
        # close() waits for FLUSH (RELEASE comes later, asynchronously): the commit must be visible on return.
        path, buf = self.pending.pop(fh, (path, None))
        if buf is None:
            return 0
        try:
            kind, name, attr = self.kind(path)
        except FuseOSError:
            return 0
        if kind != 'attr':
            return 0
        obj = self.objects[name]
        if attr == 'inblob':
            if self.provider == 'sev_guest' and len(buf) != 64:
                return 0  # the kernel refuses it (-EINVAL) and does not count it
            obj.inblob = bytes(buf)
        elif attr == 'privlevel':
            obj.privlevel = int(bytes(buf).decode().strip() or '0')
        obj.generation += 1
        return 0


def main():
    parser = argparse.ArgumentParser(description='TEST-ONLY configfs-tsm stand-in (FUSE)')
    parser.add_argument('--provider', choices=['tdx_guest', 'sev_guest'], required=True)
    parser.add_argument('--outblob', required=True)
    parser.add_argument('--auxblob')
    parser.add_argument('--rtmr', action='store_true')
    parser.add_argument('mountpoint')
    args = parser.parse_args()
    outblob = open(args.outblob, 'rb').read()
    auxblob = open(args.auxblob, 'rb').read() if args.auxblob else b''
    print('TEST-ONLY configfs-tsm stand-in on %s (provider %s)' % (args.mountpoint, args.provider), flush=True)
    # direct_io and no caching: every read reaches this process, as every read of configfs reaches the kernel.
    FUSE(StandIn(args.provider, outblob, auxblob, args.rtmr), args.mountpoint, foreground=True, nothreads=True,
         direct_io=True, attr_timeout=0, entry_timeout=0)


if __name__ == '__main__':
    sys.exit(main())
