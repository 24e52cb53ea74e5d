#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import WharfCore

/// Files written whole or not at all.
///
/// A write goes to a temporary file in the same directory, is fsynced, renamed over the
/// final name, and the directory is fsynced: after a crash the file holds either its old
/// contents or its new ones, never part of either.
public enum AtomicFile {
    /// Writes `bytes` to `path` with permissions `mode` (for example 0o600 for keys).
    public static func write(_ bytes: some Collection<UInt8>, to path: String, mode: mode_t = 0o644) throws(WharfError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = "\(directory.isEmpty ? "." : directory)/.\((path as NSString).lastPathComponent).tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw failure("create", temporary) }
        var written = false
        defer { if !written { unlink(temporary) } }
        let ok = Array(bytes).withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let result = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if result < 0 { if errno == EINTR { continue }; return false }
                offset += result
            }
            return true
        }
        guard ok, fchmod(descriptor, mode) == 0, fsync(descriptor) == 0 else {
            let error = failure("write", temporary)
            close(descriptor)
            throw error
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw failure("rename into place", path) }
        written = true
        try syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// Writes UTF-8 `text` to `path`.
    public static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws(WharfError) {
        try write(Array(text.utf8), to: path, mode: mode)
    }

    /// Flushes a directory's entries (new names, renames) to disk.
    public static func syncDirectory(_ path: String) throws(WharfError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open directory", path) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw failure("sync directory", path) }
    }

    private static func failure(_ action: String, _ path: String) -> WharfError {
        WharfError(.fileSystem, "cannot \(action) \(path): \(String(cString: strerror(errno)))")
    }
}
