#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CWharfSystem
import Foundation
import WharfCore

/// The spool on disk. States are directories; a file moves between them by `rename`
/// after it has been fsynced, so nothing half-written is ever seen under a final name.
///
/// | directory | what |
/// |---|---|
/// | `tmp/` | uploads being received, as `ID.part`; never acknowledged while here (`tmp/NODE/` for a node of several) |
/// | `inbox/PARTNER/` | files received and acknowledged; downstream systems read, move or delete them |
/// | `outgoing/`, `sent/` | files on their way out, and delivered (see `Spool+Outbound.swift`) |
/// | `partial/` | resumable uploads not yet complete, as `ID.part` (see `Spool+Partial.swift`) |
///
/// `tmp/` and `inbox/` are on the same file system, which makes the rename atomic.
public struct Spool: Sendable {
    public let root: String
    /// The node this spool stages for, when several nodes share it: each stages in
    /// `tmp/NODE/`, and recovery looks at that directory only, so a node never removes
    /// another live node's uploads. `nil`: one node, staging in `tmp/`.
    public let node: NodeName?

    public init(root: String, node: NodeName? = nil) {
        self.root = root
        self.node = node
    }

    public var stagingDirectory: String { node.map { "\(root)/tmp/\($0)" } ?? "\(root)/tmp" }

    /// The spool as node `other` sees it: what the leader recovers a dead node's staged
    /// files through.
    public func asNode(_ other: NodeName) -> Spool {
        Spool(root: root, node: other)
    }
    public var inboxDirectory: String { "\(root)/inbox" }

    public func inboxDirectory(for partner: String) -> String { "\(inboxDirectory)/\(partner)" }

    /// Creates the spool's directories if they are missing.
    public func prepare() throws(WharfError) {
        for directory in [root, "\(root)/tmp", stagingDirectory, inboxDirectory, outgoingDirectory, sentDirectory, dropDirectory, partialDirectory] {
            try Self.makeDirectory(directory)
        }
    }

    /// What recovery found in `tmp/` after a stop or a crash.
    public struct Recovery: Sendable, Equatable {
        /// Committed uploads whose rename had not happened yet, now moved into the inbox.
        public var completed: [String] = []
        /// Uploads never acknowledged, removed.
        public var removed: [String] = []
        /// Committed files that could not be moved into place, moved to `quarantine/`
        /// instead, with why: one such file must not keep the gateway from starting.
        public var quarantined: [Quarantined] = []
    }

    public struct Quarantined: Sendable, Equatable {
        public var name: String
        public var reason: String
    }

    public var quarantineDirectory: String { "\(root)/quarantine" }

    /// Moves a committed file that cannot be finished to `quarantine/`, for an operator.
    /// Throws only when even that move fails.
    private func quarantine(_ path: String, name: String, reason: WharfError, into recovery: inout Recovery) throws(WharfError) {
        try Self.makeDirectory(quarantineDirectory)
        let destination = "\(quarantineDirectory)/\(name)"
        guard rename(path, destination) == 0 else { throw StagedFile.failure("quarantine", destination) }
        try Self.syncDirectory(quarantineDirectory)
        recovery.quarantined.append(Quarantined(name: name, reason: reason.description))
    }

    /// Finishes or removes what a stop or crash left in `tmp/`.
    ///
    /// - Parameter committedReceipt: the receipt committed for an upload id, if any. A
    ///   committed upload's staged file is complete and fsynced, so it is moved into place.
    /// - Parameter committedTransfer: whether a transfer with this id was recorded; its
    ///   staged copy (`ID.out`) is then moved to `outgoing/`.
    public func recover(
        committedReceipt: (String) throws(WharfError) -> Receipt?,
        committedTransfer: (String) throws(WharfError) -> Bool = { _ in false }
    ) throws(WharfError) -> Recovery {
        var recovery = Recovery()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: stagingDirectory)) ?? []
        for name in names.sorted() {
            let path = "\(stagingDirectory)/\(name)"
            // Nodes' own staging directories (`tmp/NODE/`) are theirs to recover.
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { continue }
            if name.hasSuffix(".part"), let receipt = try committedReceipt(String(name.dropLast(5))) {
                do {
                    try StagedFile.move(path, to: self, receipt: receipt)
                    recovery.completed.append(receipt.id)
                } catch {
                    try quarantine(path, name: name, reason: error, into: &recovery)
                }
            } else if name.hasSuffix(".out"), try committedTransfer(String(name.dropLast(4))) {
                let id = String(name.dropLast(4))
                do throws(WharfError) {
                    try Self.makeDirectory(outgoingDirectory)
                    guard rename(path, outgoingPath(id)) == 0 else { throw StagedFile.failure("queue", outgoingPath(id)) }
                    try Self.syncDirectory(outgoingDirectory)
                    recovery.completed.append(id)
                } catch {
                    try quarantine(path, name: name, reason: error, into: &recovery)
                }
            } else {
                unlink(path)
                recovery.removed.append(name)
            }
        }
        if !names.isEmpty { try Self.syncDirectory(stagingDirectory) }
        return recovery
    }

    /// The longest name a file system of ours takes, in bytes (ext4, XFS, NFS).
    public static let maximumNameBytes = 255

    /// The name an upload has in `inbox/PARTNER/`: the receipt id first, which keeps names
    /// unique and in arrival order, then the name the partner gave.
    ///
    /// A partner may give a name of up to 255 bytes, which the id would push past the file
    /// system's limit: such a name is cut in the middle, at a character boundary, marked
    /// with `~`, keeping its extension (up to 32 bytes) so that whoever reads the inbox
    /// still knows the type. The receipt keeps the whole name.
    ///
    /// - Parameter reserving: bytes to leave for a suffix added beside it (`.receipt`).
    public static func storedName(id: String, filename: String, reserving: Int = 0) -> String {
        let whole = "\(id)-\(filename)"
        let limit = maximumNameBytes - reserving
        guard whole.utf8.count > limit else { return whole }
        var suffix = ""
        if let dot = filename.lastIndex(of: "."), filename.utf8[dot...].count <= 32 { suffix = String(filename[dot...]) }
        let budget = limit - id.utf8.count - 2 - suffix.utf8.count
        var head = ""
        var used = 0
        for scalar in filename.unicodeScalars.dropLast(suffix.unicodeScalars.count) {
            let size = String(scalar).utf8.count
            if used + size > budget { break }
            head.unicodeScalars.append(scalar)
            used += size
        }
        return "\(id)-\(head)~\(suffix)"
    }

    /// Opens a new staged file for upload `id`; `direct` for a large one (see `StagedFile`).
    public func stage(id: String, direct: Bool = false) throws(WharfError) -> StagedFile {
        try StagedFile(path: "\(stagingDirectory)/\(id).part", direct: direct)
    }

    static func makeDirectory(_ path: String) throws(WharfError) {
        if mkdir(path, 0o750) != 0 && errno != EEXIST {
            throw StagedFile.failure("create the directory", path)
        }
    }

    /// Makes the entries renamed into `path` durable (sharing the `fsync` with concurrent callers).
    static func syncDirectory(_ path: String) throws(WharfError) {
        try DirectorySync.shared.sync(path)
    }
}

/// Writeback of a file being appended to, started as it grows: large files go to disk
/// while they arrive, in steps of `step`, so the fsync at the end finds little left to
/// write, and a slow disk slows the sender down instead of filling memory with dirty pages.
struct Writeback {
    static let step: Int64 = 8 * 1024 * 1024
    private var started: Int64
    private var waited: Int64

    init(from offset: Int64) {
        started = offset
        waited = offset
    }

    /// The file now has `end` bytes.
    mutating func wrote(upTo end: Int64, in descriptor: Int32) {
        guard end - started >= Self.step else { return }
        // Start this step's writeback, then wait for the previous step's (best effort: the
        // fsync at the end is what makes the file durable).
        _ = wharf_start_writeback(descriptor, started, end - started)
        if started > waited {
            _ = wharf_wait_writeback(descriptor, waited, started - waited)
            waited = started
        }
        started = end
    }
}

/// An upload being written to `tmp/`.
///
/// One task owns it and calls its methods one after another (possibly on a thread pool,
/// since they block); that is what makes the unchecked `Sendable` sound.
public final class StagedFile: @unchecked Sendable {
    public let path: String
    private var descriptor: Int32
    /// Bytes written so far, and how far writeback to disk was started.
    private var written: Int64 = 0
    private var writeback = Writeback(from: 0)

    /// Whether writes still go past the page cache (see `init`).
    public private(set) var isDirect = false

    /// - Parameter direct: open with `O_DIRECT`, so that writes from an `AlignedBuffer`
    ///   go past the page cache: for a large file this saves the kernel's copy of every
    ///   byte into the cache and the work of writing it back, which cost more CPU than the
    ///   rest of receiving it. The first write that is not aligned (the last piece of a
    ///   file, as a rule) turns that off for the rest of the file. Where the file system
    ///   refuses `O_DIRECT`, the file is written as usual.
    init(path: String, direct: Bool = false) throws(WharfError) {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC
        var descriptor: Int32 = -1
        if direct, wharf_direct_flag() != 0 {
            descriptor = open(path, flags | wharf_direct_flag(), 0o640)
            guard descriptor >= 0 || errno == EINVAL else { throw Self.failure("create", path) }
        }
        isDirect = descriptor >= 0
        if descriptor < 0 {
            descriptor = open(path, flags, 0o640)
        }
        guard descriptor >= 0 else { throw Self.failure("create", path) }
        self.path = path
        self.descriptor = descriptor
    }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(WharfError) {
        if isDirect {
            if AlignedBuffer.isAligned(bytes) {
                try writeAll(bytes)
                written += Int64(bytes.count)
                return
            }
            guard fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~wharf_direct_flag()) == 0 else {
                throw Self.failure("write", path)
            }
            isDirect = false
        }
        try writeAll(bytes)
        written += Int64(bytes.count)
        writeback.wrote(upTo: written, in: descriptor)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(WharfError) {
        try Self.writeAll(bytes, to: descriptor, path: path)
    }

    /// Writes all of `bytes` to `descriptor` (the file at `path`), past short writes.
    static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String) throws(WharfError) {
        var offset = 0
        while offset < bytes.count {
            let count = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            offset += count
        }
    }

    /// Flushes the content to disk and closes the file.
    public func finish() throws(WharfError) {
        defer { closeDescriptor() }
        guard fsync(descriptor) == 0 else { throw Self.failure("sync", path) }
    }

    /// Closes (if still open) and removes the file: the upload is abandoned.
    public func discard() {
        closeDescriptor()
        unlink(path)
    }

    private func closeDescriptor() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// Moves the finished file into the partner's inbox under the receipt's stored name.
    public func install(in spool: Spool, receipt: Receipt) throws(WharfError) {
        try Self.move(path, to: spool, receipt: receipt)
    }

    static func move(_ path: String, to spool: Spool, receipt: Receipt) throws(WharfError) {
        let directory = spool.inboxDirectory(for: receipt.partner)
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            try Spool.makeDirectory(directory)
            try Spool.syncDirectory(spool.inboxDirectory)
        }
        let destination = "\(directory)/\(receipt.storedName)"
        guard rename(path, destination) == 0 else { throw failure("move into the inbox", destination) }
        try Spool.syncDirectory(directory)
    }

    static func failure(_ action: String, _ path: String) -> WharfError {
        let code = errno
        let reason = String(cString: strerror(code))
        if code == ENOSPC || code == EDQUOT {
            return WharfError(.insufficientStorage, "the spool is full: cannot \(action) \(path): \(reason)", fix: "free space on the spool's file system")
        }
        return WharfError(.fileSystem, "cannot \(action) \(path): \(reason)")
    }
}
