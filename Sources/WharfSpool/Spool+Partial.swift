#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import NIOCore
import NIOPosix
import WharfCore

/// Resumable uploads on disk: `partial/{id}.part` holds the bytes received so far. The
/// registry's `PartialUpload.offset` says how many of them are durable; bytes past it were
/// never reported, may be garbage after a crash, and are cut off whenever the file is
/// opened again. Nothing is in `inbox/` before the upload completes, when the file is
/// renamed there like a staged one.
extension Spool {
    public var partialDirectory: String { "\(root)/partial" }

    public func partialPath(_ id: String) -> String { "\(partialDirectory)/\(id).part" }

    /// Creates the empty file of a new upload, durably. Blocking.
    public func createPartial(id: String) throws(WharfError) {
        try Self.makeDirectory(partialDirectory)
        let path = partialPath(id)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw StagedFile.failure("create", path) }
        close(descriptor)
        try Self.syncDirectory(partialDirectory)
    }

    /// Opens an upload's file to append at `offset`, cutting off what lies past it.
    /// Throws `.notFound` if the file is gone or shorter than `offset`: its state is lost.
    public func openPartial(id: String, at offset: Int64) throws(WharfError) -> PartialFile {
        try PartialFile(path: partialPath(id), offset: offset)
    }

    /// The size of an upload's file, or `nil` if there is none.
    public func partialSize(id: String) -> Int64? {
        var status = stat()
        return stat(partialPath(id), &status) == 0 ? Int64(status.st_size) : nil
    }

    /// The ids of the uploads with a file in `partial/`.
    public func partialIDs() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: partialDirectory)) ?? []
        return names.filter { $0.hasSuffix(".part") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// Removes an upload's file (if any). Blocking.
    public func removePartial(id: String) {
        if unlink(partialPath(id)) == 0 { try? Self.syncDirectory(partialDirectory) }
    }

    /// The SHA-256 (hex) of an upload's first `length` bytes, read back from the disk.
    /// Blocking.
    public func partialSHA256(id: String, length: Int64) throws(WharfError) -> String {
        let path = partialPath(id)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StagedFile.failure("read", path) }
        defer { close(descriptor) }
        _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1024 * 1024)
        var left = length
        while left > 0 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, Int(min(Int64($0.count), left))) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw count == 0 ? WharfError(.fileSystem, "\(path) is shorter than recorded") : StagedFile.failure("read", path) }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
            left -= Int64(count)
        }
        return Hex.encode(hasher.finalize())
    }

    /// Moves a completed upload's file into the partner's inbox under the receipt's name.
    public func installPartial(id: String, receipt: Receipt) throws(WharfError) {
        try StagedFile.move(partialPath(id), to: self, receipt: receipt)
        try Self.syncDirectory(partialDirectory)
    }
}

/// An upload's file in `partial/`, open for appending. One task owns it, one call after
/// another, and the calls block (hence the unchecked `Sendable`).
public final class PartialFile: @unchecked Sendable {
    public let path: String
    private var descriptor: Int32
    /// Where this append started, and how far it has written.
    public let start: Int64
    public private(set) var end: Int64
    private var writeback: Writeback

    init(path: String, offset: Int64) throws(WharfError) {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw WharfError(.notFound, "the upload's file \(path) is gone")
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0, Int64(status.st_size) >= offset else {
            Glibc.close(descriptor)
            throw WharfError(.notFound, "the upload's file \(path) is shorter than its recorded offset \(offset)")
        }
        guard ftruncate(descriptor, off_t(offset)) == 0, lseek(descriptor, off_t(offset), SEEK_SET) == off_t(offset) else {
            Glibc.close(descriptor)
            throw StagedFile.failure("truncate", path)
        }
        self.path = path
        self.descriptor = descriptor
        self.start = offset
        self.end = offset
        self.writeback = Writeback(from: offset)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(WharfError) {
        try StagedFile.writeAll(bytes, to: descriptor, path: path)
        end += Int64(bytes.count)
        writeback.wrote(upTo: end, in: descriptor)
    }

    /// Makes everything written durable; returns the offset that now is.
    public func sync() throws(WharfError) -> Int64 {
        guard fsync(descriptor) == 0 else { throw StagedFile.failure("sync", path) }
        return end
    }

    /// Cuts off what this append wrote (its content did not match its digest).
    public func rollBack() throws(WharfError) {
        guard ftruncate(descriptor, off_t(start)) == 0, fsync(descriptor) == 0 else { throw StagedFile.failure("truncate", path) }
        end = start
    }

    public func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    deinit { close() }
}

/// The body of one request to a resumable upload, appended to its `PartialFile`: gathered
/// and written on the thread pool as it arrives, one write in flight while the next bytes
/// are gathered, and hashed (for a `Content-Digest` of this request's content, and the
/// whole file's digest when the request carried all of it).
///
/// One task uses it, one call after another; it touches the file only after the write in
/// flight is done. That is what makes the unchecked `Sendable` sound.
public final class PartialAppender: @unchecked Sendable {
    private let file: PartialFile
    private let threadPool: NIOThreadPool
    private let flushSize: Int
    private var pending = ByteBuffer()
    private var hasher = SHA256()
    private var inFlight: Task<Void, any Error>?
    /// Bytes of this request's content received so far (written or gathered).
    public private(set) var received: Int64 = 0

    public init(file: PartialFile, threadPool: NIOThreadPool, flushSize: Int) {
        self.file = file
        self.threadPool = threadPool
        self.flushSize = flushSize
    }

    public var start: Int64 { file.start }

    public func append(_ chunk: ByteBuffer) async throws {
        chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        pending.writeImmutableBuffer(chunk)
        received += Int64(chunk.readableBytes)
        if pending.readableBytes >= flushSize { try await flush() }
    }

    /// Hands what is gathered to the thread pool, once the write before it is done.
    private func flush() async throws {
        let full = pending
        pending = ByteBuffer()
        try await settled()
        let (file, threadPool) = (file, threadPool)
        inFlight = Task {
            try await threadPool.runIfActive {
                try full.withUnsafeReadableBytes { bytes throws(WharfError) in try file.write(bytes) }
            }
        }
    }

    /// Waits for the write in flight; throws its error.
    private func settled() async throws {
        guard let write = inFlight else { return }
        inFlight = nil
        try await write.value
    }

    /// Writes what is gathered and fsyncs; returns the durable offset.
    public func durable() async throws -> Int64 {
        if pending.readableBytes > 0 { try await flush() }
        try await settled()
        let file = file
        return try await threadPool.runIfActive { try file.sync() }
    }

    /// The SHA-256 (hex) of this request's content; after the last `append`.
    public func contentSHA256() -> String { Hex.encode(hasher.finalize()) }

    public func rollBack() async throws {
        pending = ByteBuffer()
        try? await settled()
        let file = file
        try await threadPool.runIfActive { try file.rollBack() }
    }

    /// Closes the file once no write is in flight; call it whatever the request came to.
    public func close() async {
        try? await settled()
        file.close()
    }
}
