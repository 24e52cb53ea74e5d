import CWharfSystem
import NIOCore
import NIOPosix
import WharfCore
import WharfSpool

/// An upload's staged file, created in `tmp/` by its first write, and the body bytes
/// gathered for it on the event loop between writes.
///
/// A small or medium upload is gathered in a byte buffer and written when `flushSize`
/// bytes have arrived, the upload waiting for each write. A large one (`direct`) is
/// gathered in page-aligned buffers written past the page cache, while the next buffer
/// fills (one write in flight at most).
///
/// One upload task uses it, one call after another; the thread pool runs at most one of
/// its writes at a time (`append` waits for the previous one first), which is what makes
/// the unchecked `Sendable` sound.
final class LazyStagedFile: @unchecked Sendable {
    private let spool: Spool
    private let id: String
    private let direct: Bool
    private let flushSize: Int
    private let threadPool: NIOThreadPool
    private let eventLoop: any EventLoop
    private var file: StagedFile?

    private var pending = ByteBuffer()
    private var gathering: AlignedBuffer?
    /// A direct write started and not waited for yet, and a buffer free for reuse.
    private var inFlight: EventLoopFuture<AlignedBuffer>?
    private var spare: AlignedBuffer?

    /// The size of the aligned buffers of a direct upload.
    static let directWriteSize = 1024 * 1024

    init(spool: Spool, id: String, direct: Bool, flushSize: Int, threadPool: NIOThreadPool, eventLoop: any EventLoop) {
        self.spool = spool
        self.id = id
        self.direct = direct
        self.flushSize = flushSize
        self.threadPool = threadPool
        self.eventLoop = eventLoop
    }

    /// Takes a body part; writes on the thread pool when enough has been gathered.
    func append(_ chunk: ByteBuffer) async throws {
        guard direct else {
            pending.writeImmutableBuffer(chunk)
            if pending.readableBytes >= flushSize {
                let full = pending
                pending = ByteBuffer()
                try await threadPool.runIfActive { try self.write(full) }
            }
            return
        }
        var rest = chunk
        while rest.readableBytes > 0 {
            let buffer = try gathering ?? spare.take() ?? AlignedBuffer(capacity: Self.directWriteSize)
            gathering = buffer
            let taken = rest.withUnsafeReadableBytes { buffer.append($0) }
            rest.moveReaderIndex(forwardBy: taken)
            if buffer.isFull {
                gathering = nil
                try await writeBehind(buffer)
            }
        }
    }

    /// Starts writing `buffer` once the previous direct write is done.
    private func writeBehind(_ buffer: AlignedBuffer) async throws {
        try await settled()
        inFlight = threadPool.runIfActive(eventLoop: eventLoop) {
            let file = try self.opened()
            try file.write(buffer.bytes)
            buffer.removeAll()
            return buffer
        }
    }

    /// Waits for the direct write in flight, if any; throws its error.
    func settled() async throws {
        guard let inFlight else { return }
        self.inFlight = nil
        spare = try await inFlight.get()
    }

    /// Writes what is gathered, flushes the file to disk and closes it; returns it for
    /// installing. Blocking: call it on the thread pool, after `settled`.
    func finish() throws(WharfError) -> StagedFile {
        let file = try opened()
        if let gathering {
            try file.write(gathering.bytes)
        } else if pending.readableBytes > 0 {
            try write(pending)
        }
        try file.finish()
        if direct {
            // Receiving a large body leaves megabytes of freed buffers in malloc's arenas;
            // give them back rather than let the resident size keep the high-water mark.
            wharf_release_free_memory()
        }
        return file
    }

    /// Removes the file if it was created (once a write in flight is done).
    func discard() {
        guard let inFlight else {
            file?.discard()
            return
        }
        self.inFlight = nil
        inFlight.whenComplete { _ in self.file?.discard() }
    }

    private func write(_ buffer: ByteBuffer) throws(WharfError) {
        let file = try opened()
        try buffer.withUnsafeReadableBytes { bytes throws(WharfError) in try file.write(bytes) }
    }

    private func opened() throws(WharfError) -> StagedFile {
        if let file { return file }
        let created = try spool.stage(id: id, direct: direct)
        file = created
        return created
    }
}

extension Optional {
    /// The value, leaving `nil` behind.
    fileprivate mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
