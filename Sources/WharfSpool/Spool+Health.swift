#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WharfCore

extension Spool {
    /// Bytes free on the spool's file system for unprivileged users (`statvfs`'s `f_bavail`).
    public func freeBytes() throws(WharfError) -> Int64 {
        var stats = statvfs()
        guard statvfs(root, &stats) == 0 else { throw StagedFile.failure("measure the free space of", root) }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }

    /// Creates, writes and removes a probe file in `tmp/`: what an upload needs first.
    public func checkWritable() throws(WharfError) {
        let path = "\(stagingDirectory)/.ready-probe-\(getpid())"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StagedFile.failure("create a file in", stagingDirectory) }
        defer {
            close(descriptor)
            unlink(path)
        }
        var byte: UInt8 = 0
        guard write(descriptor, &byte, 1) == 1 else { throw StagedFile.failure("write to", path) }
    }
}
