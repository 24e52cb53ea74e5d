#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import WharfCore

/// The outbound side of the spool.
///
/// | directory | what |
/// |---|---|
/// | `tmp/{id}.out` | a file being copied in for a new transfer |
/// | `outgoing/{id}` | the file of a queued, retrying or dead transfer |
/// | `sent/{partner}/{id}-{filename}` | a delivered file, beside `….receipt` with what the receiver answered |
extension Spool {
    public var outgoingDirectory: String { "\(root)/outgoing" }
    public var sentDirectory: String { "\(root)/sent" }

    public func outgoingPath(_ id: String) -> String { "\(outgoingDirectory)/\(id)" }

    /// A file copied into `tmp/`, fsynced, with its size and SHA-256.
    public struct StagedOutgoing: Sendable {
        public let path: String
        public let size: Int64
        public let sha256: String
    }

    /// Copies `source` into `tmp/{id}.out`, hashing it on the way, and fsyncs the copy.
    public func stageOutgoing(copying source: String, id: String) throws(WharfError) -> StagedOutgoing {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else {
            throw WharfError(.unreadableFile, "cannot read \(source): \(String(cString: strerror(errno)))", fix: "check the path and its permissions")
        }
        defer { close(input) }
        var status = stat()
        guard fstat(input, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw WharfError.invalid("\(source) is not a regular file", fix: "give the path of a file")
        }
        let staged = try StagedFile(path: "\(stagingDirectory)/\(id).out")
        var hasher = SHA256()
        var size: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        do throws(WharfError) {
            while true {
                let count = read(input, buffer.baseAddress, buffer.count)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw WharfError(.unreadableFile, "cannot read \(source): \(String(cString: strerror(errno)))")
                }
                if count == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                hasher.update(bufferPointer: chunk)
                try staged.write(chunk)
                size += Int64(count)
            }
            try staged.finish()
        } catch {
            staged.discard()
            throw error
        }
        return StagedOutgoing(path: staged.path, size: size, sha256: Hex.encode(hasher.finalize()))
    }

    /// Moves a staged copy to `outgoing/{id}`.
    public func installOutgoing(_ staged: StagedOutgoing, id: String) throws(WharfError) {
        try Self.makeDirectory(outgoingDirectory)
        guard rename(staged.path, outgoingPath(id)) == 0 else { throw StagedFile.failure("queue", outgoingPath(id)) }
        try Self.syncDirectory(outgoingDirectory)
    }

    /// Moves a delivered file to `sent/{partner}/` and writes the receiver's answer beside it.
    public func moveToSent(_ transfer: Transfer, receipt: String) throws(WharfError) {
        let directory = "\(sentDirectory)/\(transfer.partner)"
        try Self.makeDirectory(sentDirectory)
        try Self.makeDirectory(directory)
        let destination = "\(directory)/\(Spool.storedName(id: transfer.id, filename: transfer.filename, reserving: 8))"
        let receiptPath = destination + ".receipt"
        let descriptor = open(receiptPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw StagedFile.failure("write", receiptPath) }
        // A copy for whoever reads sent/: the registry holds the receipt durably, so this
        // file is not fsynced.
        _ = Array(receipt.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard rename(outgoingPath(transfer.id), destination) == 0 else { throw StagedFile.failure("move to sent", destination) }
        // Not fsynced either: the transfer is recorded delivered first, and if a crash
        // undoes this rename, recovery at start moves the file again.
    }

    /// Removes the file of a cancelled transfer.
    public func removeOutgoing(_ id: String) {
        unlink(outgoingPath(id))
    }

    /// Deletes files in `sent/` older than `age` seconds; returns how many.
    @discardableResult
    public func pruneSent(olderThan age: Double, now: Date = Date()) -> Int {
        var removed = 0
        let partners = (try? FileManager.default.contentsOfDirectory(atPath: sentDirectory)) ?? []
        for partner in partners {
            let directory = "\(sentDirectory)/\(partner)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                let path = "\(directory)/\(name)"
                guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                      now.timeIntervalSince(modified) > age else { continue }
                if unlink(path) == 0 { removed += 1 }
            }
        }
        return removed
    }
}

extension Spool {
    /// The drop folder: files placed in `outbound/{partner}/` are queued for that partner.
    public var dropDirectory: String { "\(root)/outbound" }

    /// The drop folder of one partner: `outbound/{partner}/`.
    public func dropDirectory(for partner: String) -> String { "\(dropDirectory)/\(partner)" }

    /// Moves `source` into `tmp/{id}.out` (a rename; a copy when it lies on another file
    /// system, the source then removed by the caller once queued), hashes and fsyncs it.
    ///
    /// - Returns: the staged file, and whether it was copied rather than moved.
    public func stageOutgoing(moving source: String, id: String) throws(WharfError) -> (staged: StagedOutgoing, copied: Bool) {
        let destination = "\(stagingDirectory)/\(id).out"
        guard rename(source, destination) == 0 else {
            if errno == EXDEV { return (try stageOutgoing(copying: source, id: id), true) }
            throw StagedFile.failure("move into the spool", source)
        }
        do throws(WharfError) {
            let digest = try Self.digest(of: destination)
            return (StagedOutgoing(path: destination, size: digest.size, sha256: digest.sha256), false)
        } catch {
            rename(destination, source)
            throw error
        }
    }

    /// Size and SHA-256 of a file, which is fsynced on the way.
    static func digest(of path: String) throws(WharfError) -> (size: Int64, sha256: String) {
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw StagedFile.failure("open", path) }
        defer { close(descriptor) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        var size: Int64 = 0
        while true {
            let count = read(descriptor, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw StagedFile.failure("read", path)
            }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            size += Int64(count)
        }
        guard fsync(descriptor) == 0 else { throw StagedFile.failure("sync", path) }
        return (size, Hex.encode(hasher.finalize()))
    }
}

extension Spool {
    /// The ids of the files in `outgoing/`.
    public func outgoingIDs() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: outgoingDirectory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }
}
