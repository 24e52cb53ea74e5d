import CWharfSystem
import Crypto
import NIOCore
import NIOPosix
import WharfCore

/// An upload's staged file, created in `tmp/` by its first write, the body bytes gathered
/// for it between writes, and their SHA-256.
///
/// A small or medium upload is gathered in a byte buffer and written when `flushSize`
/// bytes have arrived, the upload waiting for each write; it is hashed as it arrives. A
/// large one (`direct`) is gathered in page-aligned buffers, and each full buffer is
/// hashed and written past the page cache on the thread pool while the next ones fill:
/// hashing, the slowest step (SHA-256 runs at about a gigabyte a second), then has a
/// thread of its own instead of holding up the bytes behind it.
///
/// One upload task uses it, one call after another. Work handed to the thread pool forms
/// two chains, hashes in order and writes in order, each job starting when the one before
/// it in its chain is done; the task touches the hasher or the file only after waiting
/// for both chains. That is what makes the unchecked `Sendable` sound.
public final class LazyStagedFile: @unchecked Sendable {
    private let spool: Spool
    private let id: String
    private let direct: Bool
    private let flushSize: Int
    private let threadPool: NIOThreadPool
    private let eventLoop: any EventLoop
    private var file: StagedFile?
    private var hasher = SHA256()

    private var pending = ByteBuffer()
    private var gathering: AlignedBuffer?
    /// Full buffers handed to the thread pool, oldest first, each with the future of its
    /// hash and write; the last hash and write, which the next ones follow.
    private var inFlight: [(buffer: AlignedBuffer, done: EventLoopFuture<Void>)] = []
    private var lastHash: EventLoopFuture<Void>?
    private var lastWrite: EventLoopFuture<Void>?
    private var spares: [AlignedBuffer] = []

    /// The size of the aligned buffers of a direct upload.
    static let directWriteSize = 1024 * 1024
    /// Full buffers of a direct upload being hashed or written at once, besides the one
    /// filling: enough for hashing and writing to overlap.
    static let directBuffersInFlight = 2

    public init(spool: Spool, id: String, direct: Bool, flushSize: Int, threadPool: NIOThreadPool, eventLoop: any EventLoop) {
        self.spool = spool
        self.id = id
        self.direct = direct
        self.flushSize = flushSize
        self.threadPool = threadPool
        self.eventLoop = eventLoop
    }

    /// Takes a body part; hashes and writes on the thread pool when enough has been gathered.
    public func append(_ chunk: ByteBuffer) async throws {
        guard direct else {
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
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
            let buffer = try gathering ?? spares.popLast() ?? AlignedBuffer(capacity: Self.directWriteSize)
            gathering = buffer
            let taken = rest.withUnsafeReadableBytes { buffer.append($0) }
            rest.moveReaderIndex(forwardBy: taken)
            if buffer.isFull {
                gathering = nil
                try await handOff(buffer)
            }
        }
    }

    /// Queues `buffer` to be hashed and written after those before it, then waits until
    /// no more than `directBuffersInFlight` are.
    private func handOff(_ buffer: AlignedBuffer) async throws {
        let hashed = (lastHash ?? eventLoop.makeSucceededVoidFuture()).flatMap { [threadPool, eventLoop] in
            threadPool.runIfActive(eventLoop: eventLoop) { self.hasher.update(bufferPointer: buffer.bytes) }
        }
        let written = (lastWrite ?? eventLoop.makeSucceededVoidFuture()).flatMap { [threadPool, eventLoop] in
            threadPool.runIfActive(eventLoop: eventLoop) { try self.opened().write(buffer.bytes) }
        }
        lastHash = hashed
        lastWrite = written
        inFlight.append((buffer, hashed.and(written).map { _ in }))
        while inFlight.count > Self.directBuffersInFlight {
            try await reclaimOldest()
        }
    }

    /// Waits for the oldest buffer in flight and keeps it for reuse; throws its error.
    private func reclaimOldest() async throws {
        let (buffer, done) = inFlight.removeFirst()
        try await done.get()
        buffer.removeAll()
        spares.append(buffer)
    }

    /// Waits for every buffer in flight; throws the first error.
    public func settled() async throws {
        while !inFlight.isEmpty {
            try await reclaimOldest()
        }
        // Every job ran: nothing is left to wait for, and `discard` removes the file at once.
        lastHash = nil
        lastWrite = nil
    }

    /// The SHA-256 of the whole body, in hex. Call it after the last `append` and after
    /// `settled`.
    public func sha256() -> String {
        if let gathering { hasher.update(bufferPointer: gathering.bytes) }
        return Hex.encode(hasher.finalize())
    }

    /// Writes what is gathered, flushes the file to disk and closes it; returns it for
    /// installing. Blocking: call it on the thread pool, after `settled`.
    public func finish() throws(WharfError) -> StagedFile {
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

    /// Removes the file if it was created, once the work in flight is done, and returns
    /// then: whoever says the upload was refused says it after its file is gone.
    public func discard() async {
        if let lastHash, let lastWrite {
            inFlight.removeAll()
            self.lastHash = nil
            self.lastWrite = nil
            // Each chain completes once its last job ran or one failed (the jobs after a
            // failure never start): then nothing writes to the file any more.
            try? await EventLoopFuture.andAllComplete([lastHash, lastWrite], on: eventLoop).get()
        }
        file?.discard()
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
