import NIOCore
import WharfCore
import WharfSpool

/// An upload's staged file, created in `tmp/` by its first write.
///
/// One upload task uses it, one call after another (each on the thread pool), which is
/// what makes the unchecked `Sendable` sound.
final class LazyStagedFile: @unchecked Sendable {
    private let spool: Spool
    private let id: String
    private var file: StagedFile?

    init(spool: Spool, id: String) {
        self.spool = spool
        self.id = id
    }

    func write(_ buffer: ByteBuffer) throws(WharfError) {
        let file = try opened()
        try buffer.withUnsafeReadableBytes { bytes throws(WharfError) in try file.write(bytes) }
    }

    /// Flushes the file to disk and closes it; returns it for installing.
    func finish() throws(WharfError) -> StagedFile {
        let file = try opened()
        try file.finish()
        return file
    }

    /// Removes the file if it was created.
    func discard() {
        file?.discard()
    }

    private func opened() throws(WharfError) -> StagedFile {
        if let file { return file }
        let created = try spool.stage(id: id)
        file = created
        return created
    }
}
